"""Pretraining losses (official weighting) and metrics of replaced token detection.

Everything here computes in float32, whatever the model's compute dtype.
Metrics are returned as *sums* (counts) so that they add up exactly across replicas,
accumulation steps and logging intervals, plus the discriminator's logits and labels of a
sample of tokens (`disc_sample`: every token of a batch up to AUC_TOKENS_PER_STEP), which are
concatenated over the interval; `summarize_metrics` turns them into rates, the exact AUC and
`disc_base_ratio`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from electra_tf import fused
from electra_tf.config import PretrainConfig

# The exact AUC reads the logits of at most this many tokens per step (all of them for the
# tiny and Small presets; a uniform sample of whole sequences of larger batches, which are
# shuffled), so a logging interval's scores stay a few MB.
AUC_TOKENS_PER_STEP = 16384
SAMPLE_KEYS = ("disc_scores", "disc_labels")


def mlm_loss(logits: tf.Tensor, ids: tf.Tensor, weights: tf.Tensor,
             denominator: tf.Tensor | None = None) -> tf.Tensor:
    """sum(w * CE) / (sum(w) + 1e-6) over masked slots. logits [B, N, V]; ids, weights [B, N].

    `denominator` replaces sum(w) when the batch is a part (replica, micro-batch) of a larger
    global batch, so that the parts' losses add up to the global batch's mean.
    """
    weights = tf.cast(weights, tf.float32)
    ce = fused.sparse_cross_entropy(tf.cast(logits, tf.float32), ids)  # [B, N]
    total = tf.reduce_sum(weights) if denominator is None else denominator
    return tf.reduce_sum(ce * weights) / (total + 1e-6)


def discriminator_loss(logits: tf.Tensor, is_replaced: tf.Tensor, input_mask: tf.Tensor,
                       denominator: tf.Tensor | None = None) -> tf.Tensor:
    """Sigmoid CE over non-padding tokens (incl. [CLS]/[SEP]): sum / (sum(mask) + 1e-6)."""
    mask = tf.cast(input_mask, tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(is_replaced, tf.float32),
                                                 logits=tf.cast(logits, tf.float32))
    total = tf.reduce_sum(mask) if denominator is None else denominator
    return tf.reduce_sum(ce * mask) / (total + 1e-6)


def loss_denominators(batch: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[2] float32: (sum of masked_lm_weights, sum of input_mask), known before the forward pass."""
    return tf.stack([tf.reduce_sum(tf.cast(batch["masked_lm_weights"], tf.float32)),
                     tf.reduce_sum(tf.cast(batch["input_mask"], tf.float32))])


def pretraining_losses(outputs: Mapping[str, tf.Tensor], batch: Mapping[str, tf.Tensor],
                       cfg: PretrainConfig,
                       denominators: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """Returns {'loss', 'mlm_loss', 'disc_loss'}: loss = 1.0 x MLM + 50.0 x discriminator.

    `denominators` ([2], from `loss_denominators` summed over the global batch) makes this
    part's losses its share of the global-batch losses; None = this batch alone.
    The masked-LM baseline (objective "mlm", no `disc_logits`): loss = MLM, disc_loss = 0.
    """
    mlm_den, disc_den = (None, None) if denominators is None else tf.unstack(denominators)
    mlm = mlm_loss(outputs["mlm_logits"], batch["masked_lm_ids"], batch["masked_lm_weights"],
                   mlm_den)
    if "disc_logits" not in outputs:
        return {"loss": mlm, "mlm_loss": mlm, "disc_loss": tf.zeros_like(mlm)}
    disc = discriminator_loss(outputs["disc_logits"], outputs["is_replaced"], batch["input_mask"],
                              disc_den)
    total = cfg.generator_weight * mlm + cfg.discriminator_weight * disc
    return {"loss": total, "mlm_loss": mlm, "disc_loss": disc}


def expected_initial_loss(vocab_size: int, cfg: PretrainConfig) -> float:
    """The loss of an untrained model: uniform MLM (ln V) + 50 x ln 2 for the discriminator
    (ln V alone for the masked-LM baseline)."""
    if cfg.objective == "mlm":
        return float(np.log(vocab_size))
    return cfg.generator_weight * float(np.log(vocab_size)) + cfg.discriminator_weight * float(
        np.log(2.0))


def metric_sums(outputs: Mapping[str, tf.Tensor],
                batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Per-batch float32 sums from which the pretraining metrics are computed.

    Keys: mlm_weight, mlm_correct (argmax = original), sampled_correct (sample = original),
    tokens (the discriminator's: 0 for the masked-LM baseline), disc_correct, true_pos,
    pred_pos, actual_pos, disc_loss_sum (the discriminator's summed cross-entropy, for
    `disc_base_ratio`), input_tokens (non-padding positions of the batch, whatever the
    objective: real-token throughput and row fill).
    """
    weights = tf.cast(batch["masked_lm_weights"], tf.float32)
    ids = batch["masked_lm_ids"]
    mlm_pred = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32)
    mask = input_mask = tf.cast(batch["input_mask"], tf.float32)
    if "disc_logits" in outputs:
        labels = tf.cast(outputs["is_replaced"], tf.float32)
        logits = tf.cast(outputs["disc_logits"], tf.float32)
    else:  # masked-LM baseline: no discriminator; its sums stay 0 (rates and AUC report NaN)
        labels = logits = mask = tf.zeros_like(mask)
    preds = tf.cast(logits > 0.0, tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    equal = lambda a: tf.reduce_sum(tf.cast(tf.equal(a, ids), tf.float32) * weights)  # noqa: E731
    return {
        "mlm_weight": tf.reduce_sum(weights),
        "mlm_correct": equal(mlm_pred),
        "sampled_correct": equal(outputs["sampled_ids"]),
        "tokens": tf.reduce_sum(mask),
        "disc_correct": tf.reduce_sum(tf.cast(tf.equal(preds, labels), tf.float32) * mask),
        "true_pos": tf.reduce_sum(preds * labels * mask),
        "pred_pos": tf.reduce_sum(preds * mask),
        "actual_pos": tf.reduce_sum(labels * mask),
        "disc_loss_sum": tf.reduce_sum(ce * mask),
        "input_tokens": tf.reduce_sum(input_mask),
    }


def metric_shapes() -> dict[str, tuple[int, ...]]:
    """Shapes of the `metric_sums` outputs, to start accumulators at zero."""
    return {k: () for k in ("mlm_weight", "mlm_correct", "sampled_correct", "tokens",
                            "disc_correct", "true_pos", "pred_pos", "actual_pos",
                            "disc_loss_sum", "input_tokens")}


def sample_rows(input_ids: tf.Tensor, parts: int) -> tf.Tensor:
    """Rows of a replica's (micro-)batch input_ids [b, L] whose tokens go into the AUC sample:
    all of them up to AUC_TOKENS_PER_STEP tokens per global step of `parts` such batches."""
    shape = tf.shape(input_ids)
    return tf.maximum(1, tf.minimum(shape[0], AUC_TOKENS_PER_STEP // (shape[1] * parts)))


def disc_sample(outputs: Mapping[str, tf.Tensor], batch: Mapping[str, tf.Tensor],
                rows: int | tf.Tensor) -> dict[str, tf.Tensor]:
    """The discriminator's logits and labels of the first `rows` sequences, for the exact AUC.

    Returns disc_scores [rows, L] float32 and disc_labels [rows, L] int32 (1 replaced,
    0 original, -1 padding, which the AUC leaves out). The masked-LM baseline: all -1.
    """
    mask = tf.cast(batch["input_mask"][:rows], tf.bool)
    if "disc_logits" not in outputs:
        return {"disc_scores": tf.zeros(tf.shape(mask), tf.float32),
                "disc_labels": -tf.ones(tf.shape(mask), tf.int32)}
    labels = tf.cast(outputs["is_replaced"][:rows], tf.int32)
    return {"disc_scores": tf.cast(outputs["disc_logits"][:rows], tf.float32),
            "disc_labels": tf.where(mask, labels, -1)}


def exact_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of `scores` for labels 1 vs 0 (entries labelled -1 are left out), from ranks:
    the Mann-Whitney statistic, tied scores sharing their average rank. NaN without both
    classes."""
    scores, labels = np.asarray(scores).ravel(), np.asarray(labels).ravel()
    keep = labels >= 0
    scores, positive = scores[keep].astype(np.float64), labels[keep] == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    # average 1-based rank of each run of equal scores
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], len(ranked)]
    ranks = np.empty(len(ranked))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_entropy(p: float) -> float:
    """-p ln p - (1 - p) ln(1 - p): the loss of always predicting the base rate p."""
    if not 0.0 < p < 1.0:
        return 0.0
    return float(-p * np.log(p) - (1.0 - p) * np.log(1.0 - p))


def accumulate(total: dict, new: Mapping[str, np.ndarray]) -> dict:
    """Adds one call's sums to `total` and appends its AUC sample (SAMPLE_KEYS)."""
    out = dict(total)
    for key, value in new.items():
        if key in SAMPLE_KEYS:
            out[key] = [*out.get(key, []), np.asarray(value)]
        else:
            out[key] = out.get(key, 0) + value
    return out


def _flat(value) -> np.ndarray:
    """One array, or a list of arrays (an interval's calls), as one flat array."""
    parts = value if isinstance(value, list) else [value]
    return np.concatenate([np.asarray(p).reshape(-1) for p in parts]) if parts else np.zeros(0)


def summarize_metrics(sums: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Accumulated `metric_sums` (and AUC samples, one array or a list of them) ->
    mlm_accuracy, sampled_accuracy, disc_accuracy, disc_precision, disc_recall, disc_auc
    (exact, see `exact_auc`) and disc_base_ratio: the discriminator's loss over the entropy of
    the replaced fraction, i.e. over the loss of always answering the base rate (1.0 = it has
    learned nothing; a healthy run falls well below). NaN where a denominator is zero."""
    s = {k: np.asarray(v, np.float64) for k, v in sums.items() if k not in SAMPLE_KEYS}

    def ratio(num: str, den: str) -> float:
        return float(s[num] / s[den]) if s[den] > 0 else float("nan")

    auc = float("nan")
    if all(k in sums for k in SAMPLE_KEYS):
        auc = exact_auc(*(_flat(sums[k]) for k in SAMPLE_KEYS))
    base = binary_entropy(ratio("actual_pos", "tokens")) if s["tokens"] > 0 else 0.0
    return {
        "mlm_accuracy": ratio("mlm_correct", "mlm_weight"),
        "sampled_accuracy": ratio("sampled_correct", "mlm_weight"),
        "disc_accuracy": ratio("disc_correct", "tokens"),
        "disc_precision": ratio("true_pos", "pred_pos"),
        "disc_recall": ratio("true_pos", "actual_pos"),
        "disc_auc": auc,
        "disc_base_ratio": (float(s["disc_loss_sum"] / s["tokens"]) / base if base > 0
                            else float("nan")),
    }
