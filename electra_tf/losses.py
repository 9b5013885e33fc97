"""Pretraining losses (official weighting) and metrics of replaced token detection.

Everything here computes in float32, whatever the model's compute dtype.
Metrics are returned as *sums* (counts and a score histogram) so that they add up exactly
across replicas, accumulation steps and logging intervals; `summarize_metrics` turns the
accumulated sums into rates and the AUC.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from electra_tf.config import PretrainConfig

AUC_BINS = 1000  # histogram bins of the discriminator's probability, for the streaming AUC


def mlm_loss(logits: tf.Tensor, ids: tf.Tensor, weights: tf.Tensor,
             denominator: tf.Tensor | None = None) -> tf.Tensor:
    """sum(w * CE) / (sum(w) + 1e-6) over masked slots. logits [B, N, V]; ids, weights [B, N].

    `denominator` replaces sum(w) when the batch is a part (replica, micro-batch) of a larger
    global batch, so that the parts' losses add up to the global batch's mean.
    """
    weights = tf.cast(weights, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids,
                                                        logits=tf.cast(logits, tf.float32))
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
    tokens, disc_correct, true_pos, pred_pos, actual_pos, and auc_pos / auc_neg: histograms
    [AUC_BINS] of the "replaced" probability for replaced and original tokens.
    """
    weights = tf.cast(batch["masked_lm_weights"], tf.float32)
    ids = batch["masked_lm_ids"]
    mlm_pred = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32)
    mask = tf.cast(batch["input_mask"], tf.float32)
    if "disc_logits" in outputs:
        labels = tf.cast(outputs["is_replaced"], tf.float32)
        probs = tf.sigmoid(tf.cast(outputs["disc_logits"], tf.float32))
    else:  # masked-LM baseline: no discriminator; its sums stay 0 (rates and AUC report NaN)
        labels = probs = mask = tf.zeros_like(mask)
    preds = tf.cast(probs > 0.5, tf.float32)
    bins = tf.clip_by_value(tf.cast(probs * AUC_BINS, tf.int32), 0, AUC_BINS - 1)
    flat_bins = tf.reshape(bins, [-1])
    hist_pos = tf.math.unsorted_segment_sum(tf.reshape(labels * mask, [-1]), flat_bins, AUC_BINS)
    hist_neg = tf.math.unsorted_segment_sum(tf.reshape((1 - labels) * mask, [-1]), flat_bins,
                                            AUC_BINS)
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
        "auc_pos": hist_pos,
        "auc_neg": hist_neg,
    }


def metric_shapes() -> dict[str, tuple[int, ...]]:
    """Shapes of the `metric_sums` outputs, to start accumulators at zero."""
    scalars = ("mlm_weight", "mlm_correct", "sampled_correct", "tokens", "disc_correct",
               "true_pos", "pred_pos", "actual_pos")
    return {**{k: () for k in scalars}, "auc_pos": (AUC_BINS,), "auc_neg": (AUC_BINS,)}


def histogram_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC from score histograms (ties in a bin count one half); NaN without both classes."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    neg_below = np.cumsum(neg) - neg  # negatives in strictly lower bins
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (pos.sum() * neg.sum()))


def summarize_metrics(sums: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Accumulated `metric_sums` -> mlm_accuracy, sampled_accuracy, disc_accuracy,
    disc_precision, disc_recall, disc_auc (NaN where a denominator is zero)."""
    s = {k: np.asarray(v, np.float64) for k, v in sums.items()}

    def ratio(num: str, den: str) -> float:
        return float(s[num] / s[den]) if s[den] > 0 else float("nan")

    return {
        "mlm_accuracy": ratio("mlm_correct", "mlm_weight"),
        "sampled_accuracy": ratio("sampled_correct", "mlm_weight"),
        "disc_accuracy": ratio("disc_correct", "tokens"),
        "disc_precision": ratio("true_pos", "pred_pos"),
        "disc_recall": ratio("true_pos", "actual_pos"),
        "disc_auc": histogram_auc(s["auc_pos"], s["auc_neg"]),
    }
