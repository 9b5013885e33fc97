"""Fine-tuning run: task data + TaskModel + the authors' optimizer, over one or several seeds.

Read top to bottom: `run` reads and featurizes the task once (`prepare`), then for each seed
builds the model inside the strategy scope, initializes the discriminator (`initialize`),
restores the seed's latest checkpoint if there is one, trains in `steps_per_loop` chunks
inside one tf.function with a progress line (loss, learning rate, examples/s, ETA), evaluates
on dev, writes dev (and test) predictions and the seed's metrics; finally the median of every
metric over seeds goes to results.json and a summary table (the published numbers are
medians over seeds).

Recipe (the authors' configure_finetuning.py): Adam with decoupled weight decay 0.01, no bias
correction, epsilon 1e-6, clip 1.0; warmup over the first 10% of steps then linear decay;
layer-wise learning-rate decay (0.8 Small/Base, 0.9 Large); LR 3e-4/1e-4/5e-5; batch 32;
3 epochs (10 RTE and STS-B, 2 SQuAD). Layer-wise decay defaults to the official form
(`llrd_mode="official"`: the top layer gets decay^2, see optimization.layerwise_lr_scale):
the published results and their decay values were produced with it; "corrected" gives the top
layer decay^1, as the paper's text describes.
"""

from __future__ import annotations

import dataclasses
import json
import math

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf import graph_options, loop, optimization
from electra_tf import metrics as metric_lib
from electra_tf.atomic import write_atomic
from electra_tf.checkpoints import initialize
from electra_tf.config import ModelConfig, nearest_size
from electra_tf.data import features as feats
from electra_tf.data import squad, tasks
from electra_tf.data.finetune_data import (
    EvalSet,
    TaskData,
    eval_dataset,
    prepare,
    train_dataset,
)
from electra_tf.distribute import get_strategy
from electra_tf.errors import ConfigError
from electra_tf.finetune_config import FinetuneConfig
from electra_tf.finetuning_io import (
    reinitialize_top_blocks,
    remove_top_directions,
    write_predictions,
)
from electra_tf.heads import TaskModel, answer_beam
from electra_tf.kinds import CLASSIFICATION, REGRESSION, SQUAD, TAGGING
from electra_tf.tokenization import WordPieceTokenizer, casing_mismatch, load_vocab
from electra_tf.training import sampling_seed

# Per-size learning rate and layer-wise decay (the authors' fine-tuning settings; tiny: ours).
SIZE_DEFAULTS = {"tiny": (1e-3, 0.8), "small": (3e-4, 0.8), "base": (1e-4, 0.8),
                 "large": (5e-5, 0.9)}


def size_defaults(model: ModelConfig) -> tuple[str, float, float]:
    """(nearest published size, its learning rate, its layer-wise decay) for a model shape:
    a converted Large fine-tunes at Large's 5e-5 / 0.9 whatever flag named a preset."""
    size = nearest_size(model)
    return (size, *SIZE_DEFAULTS[size])
RESULTS_FILE = "results.json"


def train_steps(cfg: FinetuneConfig, num_examples: int) -> int:
    """Optimizer steps for the run: int(examples x epochs / batch), as the authors' code."""
    return max(1, int(num_examples * cfg.train_epochs / cfg.batch_size))


# --- losses and the compiled steps ----------------------------------------------------------

def per_example_loss(head: str, out: dict, batch: dict, answerable: bool) -> tf.Tensor:
    """[B] float32 losses, as the authors' heads (tagging: summed over labeled tokens)."""
    if head == CLASSIFICATION:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(batch["label_ids"], out["logits"])
    if head == REGRESSION:
        return tf.square(out["predictions"] - batch["targets"])
    if head == TAGGING:
        tokens = tf.nn.sparse_softmax_cross_entropy_with_logits(batch["label_ids"],
                                                                out["logits"])  # [B, L]
        return tf.reduce_sum(tokens * batch["label_weights"], -1)
    loss = (tf.nn.sparse_softmax_cross_entropy_with_logits(batch["start_positions"],
                                                           out["start_logits"])
            + tf.nn.sparse_softmax_cross_entropy_with_logits(batch["end_positions"],
                                                             out["end_logits"])) / 2.0
    if answerable:
        loss += 0.5 * tf.nn.sigmoid_cross_entropy_with_logits(batch["answerable"],
                                                              out["answerable_logits"])
    return loss


class FinetuneStep:
    """Compiled training and prediction of a TaskModel under a strategy (create in its scope)."""

    def __init__(self, model: TaskModel, optimizer, cfg: FinetuneConfig, seed: int,
                 strategy: tf.distribute.Strategy):
        self.model, self.optimizer, self.cfg, self.seed = model, optimizer, cfg, seed
        self.strategy = strategy
        self.variables = model.trainable_variables
        optimizer.build(self.variables)
        self._train = tf.function(self._train_loop, jit_compile=cfg.jit_compile)
        self._predict_fn = tf.function(self._predict)

    def train(self, iterator, steps: tf.Tensor) -> tf.Tensor:
        """Runs `steps` updates; returns the sum of their global-batch mean losses."""
        with graph_options.lean_grappler():
            return self._train(iterator, steps)

    def predict(self, batch):
        """Per-replica outputs of the model on `batch` (dropout off)."""
        with graph_options.lean_grappler():
            return self._predict_fn(batch)

    def _replica_train(self, batch):
        ctx = tf.distribute.get_replica_context()
        seed = sampling_seed(self.seed, self.optimizer.iterations, ctx.replica_id_in_sync_group)
        with tf.GradientTape() as tape:
            out = self.model(batch, training=True, seed=seed)
            losses = per_example_loss(self.model.kind, out, batch, self.model.answerable)
            loss = tf.reduce_sum(losses) / float(self.cfg.batch_size)  # share of the global mean
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, self.variables)]
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        grads, _ = tf.clip_by_global_norm(grads, self.cfg.clip_norm)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return loss

    def _train_loop(self, iterator, steps):
        total = tf.constant(0.0)
        for _ in tf.range(steps):
            per_replica = self.strategy.run(self._replica_train, args=(next(iterator),))
            total += self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        return total

    def _replica_predict(self, batch):
        out = self.model(batch, training=False)
        result = {"row": batch["row"]}
        if self.model.kind != SQUAD:
            result.update(out)
            return result
        result.update(answer_beam(out["start_logits"], out["start_top_index"],
                                  out["end_beam_logits"]))
        if "answerable_logits" in out:
            result["answerable_logits"] = out["answerable_logits"]
        return result

    def _predict(self, batch):
        return self.strategy.run(self._replica_predict, args=(batch,))

    def predict_all(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Model outputs for every row of `features`, in order, as NumPy arrays."""
        keep = {k: v for k, v in features.items() if k in ("input_ids", "input_mask",
                                                            "segment_ids")}
        data = self.strategy.experimental_distribute_dataset(
            eval_dataset(keep, self.cfg.eval_batch_size))
        parts: dict[str, list] = {}
        for batch in data:
            out = self.predict(batch)
            for key, value in out.items():
                parts.setdefault(key, []).extend(
                    t.numpy() for t in self.strategy.experimental_local_results(value))
        merged = {k: np.concatenate(v) for k, v in parts.items()}
        real = merged.pop("row")
        order = np.argsort(np.where(real >= 0, real, np.iinfo(np.int64).max), kind="stable")
        order = order[:int((real >= 0).sum())]
        return {k: v[order] for k, v in merged.items()}


# --- evaluation -----------------------------------------------------------------------------

def evaluate(cfg: FinetuneConfig, data: TaskData, eval_set: EvalSet,
             outputs: dict[str, np.ndarray], with_labels: bool = True) -> tuple[dict, object]:
    """(metrics, predictions) of one evaluation set; metrics are {} without labels."""
    spec, examples = cfg.task, eval_set.examples
    if spec.kind == SQUAD:
        best, null, nbest = squad.decode(examples, eval_set.encoded, outputs, cfg.n_best_size,
                                         cfg.max_answer_length)
        answers = {q: ("" if null.get(q, -math.inf) > cfg.na_threshold else t)
                   for q, t in best.items()}
        predictions = {"predictions": answers, "best_non_null": best, "null_odds": null,
                       "nbest": nbest}
        if not with_labels:
            return {}, predictions
        dataset = tasks.load_squad(eval_set.path)
        if spec.squad_v2:
            result = metric_lib.squad_v2_scores(dataset, best, null, cfg.na_threshold)
        else:
            result = metric_lib.squad_v1_scores(dataset, best)
        return result, predictions
    if spec.kind == TAGGING:
        tags = feats.tags_from_logits(outputs["logits"], eval_set.encoded, examples,
                                      data.labels)
        result = metric_lib.span_f1([e.label for e in examples], tags) if with_labels else {}
        return result, tags
    if spec.kind == REGRESSION:
        low, high = data.label_range
        values = outputs["predictions"] * (high - low) + low
        gold = [float(e.label) for e in examples] if with_labels else None
        result = metric_lib.score(spec.metrics, gold, values) if with_labels else {}
        return result, [float(v) for v in values]
    predicted = outputs["logits"].argmax(-1)
    result = {}
    if with_labels:
        gold = eval_set.encoded.features["label_ids"]
        result = metric_lib.score(spec.metrics, gold, predicted)
    return result, [data.labels[i] for i in predicted]


# --- one seed, and the run ------------------------------------------------------------------

def run_seed(cfg: FinetuneConfig, data: TaskData, seed: int,
             strategy: tf.distribute.Strategy) -> dict[str, float] | None:
    """Trains and evaluates one seed in output_dir/seed_<seed>; returns its dev metrics, or
    None when SIGTERM stopped it (a checkpoint of the step reached is saved)."""
    seed_dir = f"{cfg.output_dir}/seed_{seed}"
    metrics_path = f"{seed_dir}/dev_metrics.json"
    if tf.io.gfile.exists(metrics_path):  # finished before (a resumed multi-seed run)
        with tf.io.gfile.GFile(metrics_path) as f:
            logging.info("seed %d: already finished, metrics from %s", seed, metrics_path)
            return json.load(f)
    spec = cfg.task
    total = train_steps(cfg, len(data.train))
    keras.utils.set_random_seed(seed)  # the head's initial weights depend on the seed only
    with strategy.scope():
        model = TaskModel(cfg.model, spec.kind, num_labels=max(2, len(data.labels)),
                          answerable=spec.squad_v2, beam_size=cfg.beam_size, name="task_model")
        model.build()
        optimizer = optimization.finetuning_optimizer(
            model.trainable_variables, cfg.learning_rate, total,
            int(total * cfg.warmup_proportion), cfg.model.num_layers, cfg.layerwise_decay,
            cfg.llrd_mode, cfg.weight_decay, cfg.adam_epsilon, cfg.adam_bias_correction)
        step_fn = FinetuneStep(model, optimizer, cfg, seed, strategy)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        manager = tf.train.CheckpointManager(checkpoint, seed_dir, cfg.keep_checkpoints)
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            logging.info("seed %d: resumed from %s", seed, manager.latest_checkpoint)
        elif cfg.init_checkpoint:
            initialize(model, cfg.init_checkpoint)
            remove_top_directions(model.discriminator.encoder.embeddings,
                                  cfg.embedding_directions_removed)
            reinitialize_top_blocks(model.discriminator.encoder, cfg.reinit_layers)
        else:
            logging.warning("seed %d: no --init_checkpoint: fine-tuning from random weights",
                            seed)
    step = int(optimizer.iterations)
    iterator = iter(strategy.experimental_distribute_dataset(
        train_dataset(data.train.features, cfg.batch_size, total, seed, step)))
    cadence = loop.Cadence(total, cfg.batch_size, cfg.steps_per_loop, cfg.log_every,
                           cfg.save_every)
    writer = tf.summary.create_file_writer(f"{seed_dir}/train")

    def log(progress: loop.Progress) -> None:
        loss = float(progress.sums["loss"]) / progress.window_steps
        rate = float(optimizer.learning_rate)
        logging.info("seed %d step %d/%d  loss %.4f  lr %.3g  %.1f examples/s  ETA %s", seed,
                     progress.step, total, loss, rate, progress.examples_per_second,
                     loop.duration(progress.eta_seconds))
        loop.write_summaries(writer, progress.step, {
            "loss": loss, "learning_rate": rate,
            "examples_per_second": progress.examples_per_second})

    try:
        finished = loop.run_loop(
            cadence, step, lambda n: {"loss": float(step_fn.train(iterator, tf.constant(n)))},
            manager, log, label=f"seed {seed}: ")
    finally:
        writer.flush()  # also when a non-finite loss stops the run
    if not finished:  # SIGTERM: the checkpoint is saved; the same command resumes the seed
        return None
    result: dict[str, float] = {}
    for split, sets in (("dev", data.dev), ("test", data.test)):
        for eval_set in sets:
            outputs = step_fn.predict_all(eval_set.encoded.features)
            scores, predictions = evaluate(cfg, data, eval_set, outputs,
                                           cfg.task.labelled(split))
            prefix = ("" if split == "dev" else "test_") + (
                "" if eval_set.name == split else f"{eval_set.name}_")
            result.update({f"{prefix}{k}": float(v) for k, v in scores.items()})
            write_predictions(cfg, data, eval_set, split, predictions, seed_dir)
    write_atomic(metrics_path, json.dumps(result, indent=2, sort_keys=True).encode())
    logging.info("seed %d dev: %s", seed, "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


def summarize(per_seed: dict[int, dict[str, float]]) -> tuple[dict[str, float], str]:
    """(median of each metric over seeds, a text table: one row per seed, then the median)."""
    names = sorted({k for m in per_seed.values() for k in m})
    median = {k: float(np.median([m[k] for m in per_seed.values() if k in m])) for k in names}
    width = max([len(n) for n in names] + [8])
    lines = ["seed    " + "  ".join(f"{n:>{width}}" for n in names)]
    for seed, m in per_seed.items():
        lines.append(f"{seed:<8}" + "  ".join(f"{m.get(n, float('nan')):>{width}.4f}"
                                              for n in names))
    lines.append("median  " + "  ".join(f"{median[n]:>{width}.4f}" for n in names))
    return median, "\n".join(lines)


def run(cfg: FinetuneConfig) -> dict:
    """Fine-tunes cfg.num_seeds seeds (seed, seed+1, ...); returns the results dict."""
    strategy = get_strategy(cfg.strategy, cfg.tpu or None)
    if cfg.batch_size % strategy.num_replicas_in_sync or (
            cfg.eval_batch_size % strategy.num_replicas_in_sync):
        raise ConfigError(f"--batch_size={cfg.batch_size} and --eval_batch_size="
                          f"{cfg.eval_batch_size} must be divisible by the "
                          f"{strategy.num_replicas_in_sync} replicas")
    vocab = load_vocab(cfg.vocab_file, cfg.model.vocab_size)
    if warning := casing_mismatch(vocab, cfg.lower_case):
        logging.warning(warning)
    keras.mixed_precision.set_global_policy(cfg.precision)
    data = prepare(cfg, WordPieceTokenizer(vocab, cfg.lower_case))
    # Saved with the labels and target range resolved from the training file, so the run's
    # outputs can be read (and exported) without the data.
    resolved = dataclasses.replace(cfg.task, labels=data.labels or cfg.task.labels,
                                   label_range=tuple(data.label_range)
                                   if cfg.task.kind == REGRESSION else cfg.task.label_range)
    tf.io.gfile.makedirs(cfg.output_dir)
    write_atomic(f"{cfg.output_dir}/finetune_config.json",
                 dataclasses.replace(cfg, task=resolved).to_json().encode())
    per_seed = {}
    for seed in range(cfg.seed, cfg.seed + cfg.num_seeds):
        metrics = run_seed(cfg, data, seed, strategy)
        if metrics is None:
            logging.info("stopped in seed %d; rerun the same command to resume it", seed)
            return {"task": cfg.task.name, "stopped_in_seed": seed, "table": ""}
        per_seed[seed] = metrics
    median, table = summarize(per_seed)
    results = {"task": cfg.task.name, "seeds": {str(s): m for s, m in per_seed.items()},
               "median": median, "train_steps": train_steps(cfg, len(data.train)),
               "init_checkpoint": cfg.init_checkpoint}
    write_atomic(f"{cfg.output_dir}/{RESULTS_FILE}",
                 json.dumps(results, indent=2, sort_keys=True).encode())
    # The table itself is the CLI's output (stdout); the log says where the numbers are.
    logging.info("%s over %d seed(s): median %s; per seed in %s/%s", cfg.task.name,
                 cfg.num_seeds, "  ".join(f"{k} {v:.4f}" for k, v in median.items()),
                 cfg.output_dir, RESULTS_FILE)
    results["table"] = table
    return results
