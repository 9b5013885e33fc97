"""Pretraining run: config + data + model + loop, with checkpoints, summaries and guards.

Read top to bottom: `run` resolves the strategy and precision, builds the distributed input
(`_Inputs`), the model, optimizer and step inside the strategy scope, restores the latest
checkpoint or warm-starts from --init_checkpoint (`_build_state`), then hands the steps to the
shared loop (`electra_tf.loop`: chunks of `steps_per_loop` steps per tf.function call, ETA,
the non-finite guard, saves, SIGTERM) with what is pretraining's own (`_Report`: the progress
line's metrics, TensorBoard, evaluation). SIGTERM (preemption) saves a checkpoint at the
current step and returns normally; a NaN/Inf loss stops the run with its step number and keeps
the last good checkpoint.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from absl import logging

from electra_tf import checkpoints, loop, losses, optimization
from electra_tf.checkpoints import CONFIG_FILE
from electra_tf.config import PRECISIONS, ElectraConfig, RunOptions  # noqa: F401 (RunOptions: for callers of run)
from electra_tf.data import pipeline
from electra_tf.distribute import get_strategy
from electra_tf.errors import ConfigError, DataError
from electra_tf.models import build_pretrainer
from electra_tf.tokenization import load_vocab
from electra_tf.training import LOSS_KEYS, PretrainStep


def check_options(cfg: ElectraConfig, opts: RunOptions, num_replicas: int) -> None:
    """Fails early, with the flag's name, on values that cannot work."""
    if opts.precision not in PRECISIONS:
        raise ConfigError(f"--precision={opts.precision}: expected one of {PRECISIONS}")
    for name in ("steps_per_loop", "save_every", "log_every", "eval_every", "eval_steps",
                 "accumulation_steps", "keep_checkpoints"):
        if getattr(opts, name) < 1:
            raise ConfigError(f"--{name}={getattr(opts, name)}: expected a positive integer")
    parts = num_replicas * opts.accumulation_steps
    if cfg.pretrain.batch_size % parts:
        raise ConfigError(f"--batch_size={cfg.pretrain.batch_size} is not divisible by "
                          f"{num_replicas} replicas x {opts.accumulation_steps} accumulation "
                          "steps")


def default_vocab_size(model_dir: str, vocab_file: str) -> int:
    """The model's vocab_size when the config does not set it: a resumed run's own (its
    config.json), else the vocabulary's size (a learned vocabulary rarely has the preset's)."""
    path = f"{model_dir}/{CONFIG_FILE}"
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            return ElectraConfig.from_json(f.read()).model.vocab_size
    return load_vocab(vocab_file).size


def check_saved_config(model_dir: str, cfg: ElectraConfig) -> None:
    """Writes config.json on a new run; on resume, stops if a key that shapes the run differs."""
    path = f"{model_dir}/{CONFIG_FILE}"
    if not tf.io.gfile.exists(path):
        tf.io.gfile.makedirs(model_dir)
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(cfg.to_json())
        return
    with tf.io.gfile.GFile(path) as f:
        saved = ElectraConfig.from_json(f.read()).to_dict()
    current = cfg.to_dict()
    for section in ("model", "pretrain"):
        for key, value in saved[section].items():
            if current[section][key] != value:
                raise ConfigError(f"{path}: resuming with {section}.{key}="
                                  f"{current[section][key]!r} but the run was started with "
                                  f"{value!r}; use a new --model_dir or the same settings")


def run(cfg: ElectraConfig, opts: RunOptions) -> dict[str, float]:
    """Pretrains until cfg.pretrain.train_steps; returns the last logged metrics."""
    pre = cfg.pretrain
    strategy = get_strategy(opts.strategy, opts.tpu or None)
    check_options(cfg, opts, strategy.num_replicas_in_sync)
    vocab = load_vocab(opts.vocab_file, cfg.model.vocab_size)
    if opts.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(opts.precision)
    check_saved_config(opts.model_dir, cfg)
    # Checked once here, before the model is built, not again by each input pipeline.
    train_files = pipeline.list_files(opts.train_files)
    eval_files = pipeline.list_files(opts.eval_files) if opts.eval_files else []
    pipeline.validate_records(train_files + eval_files, pre.max_seq_length)
    if pre.whole_word_masking:
        logging.info("whole-word masking: words from the vocabulary's \"##\" pieces%s",
                     " and the shards' word_continues" if pipeline.has_word_segments(train_files)
                     else " only (the shards hold no word boundaries: for Chinese, one token a "
                     "character, build them with --word_segmenter=jieba)")
    inputs = _Inputs(cfg, opts, strategy, pipeline.MaskingSpec.from_config(cfg, vocab))
    keras.utils.set_random_seed(pre.seed)  # the initial weights depend on the run seed only
    with strategy.scope():
        step_fn, manager, iterator = _build_state(cfg, opts, strategy, inputs)
        eval_iterator = (inputs.iterator(opts.eval_files, False, pre.seed + 1)
                         if opts.eval_files else None)
    report = _Report(cfg, opts, step_fn)

    def train(n: int) -> dict:
        return {k: v.numpy() for k, v in step_fn.train(iterator, tf.constant(n)).items()}

    def after_chunk(step: int) -> None:
        if eval_iterator is not None and (step % opts.eval_every == 0
                                          or step == pre.train_steps):
            report.evaluate(step, eval_iterator)

    cadence = loop.Cadence(pre.train_steps, pre.batch_size, opts.steps_per_loop,
                           opts.log_every, opts.save_every, opts.stop_after)
    try:
        loop.run_loop(cadence, int(step_fn.optimizer.iterations), train, manager, report.log,
                      after_chunk, report.accumulate, rate_keys=("input_tokens",))
    except tf.errors.DataLossError as e:
        _name_corrupt_shard(e, train_files + eval_files, int(step_fn.optimizer.iterations),
                            manager.latest_checkpoint)
    finally:
        report.close()
    return report.logged


class _Inputs:
    """The run's training and evaluation iterators (one tf.data pipeline per replica)."""

    def __init__(self, cfg: ElectraConfig, opts: RunOptions, strategy, spec):
        self.pre, self.opts, self.strategy, self.spec = cfg.pretrain, opts, strategy, spec

    def _local(self, files: str, training: bool, seed: int,
               ctx: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        ctx = ctx or tf.distribute.InputContext()
        return pipeline.pretraining_dataset(
            files, ctx.get_per_replica_batch_size(self.pre.batch_size), self.pre.max_seq_length,
            self.spec, seed=seed, training=training, deterministic=self.opts.deterministic,
            input_context=ctx, validate=False).repeat()

    def iterator(self, files: str, training: bool, seed: int):
        if not training:
            available = sum(1 for _ in tf.data.TFRecordDataset(
                pipeline.list_files(files)).take(self.pre.batch_size))
            if available < self.pre.batch_size:
                raise DataError(f"{files}: {available} eval examples, fewer than one global "
                                f"batch ({self.pre.batch_size}); hold out more "
                                "(--eval_fraction)")
        # One replica: a plain tf.data iterator, which tf.train.Checkpoint saves (exact
        # resumption). Distributed iterators cannot be checkpointed in TF 2.21: with several
        # replicas a resumed run reshuffles with a seed offset by the step instead.
        if self.strategy.num_replicas_in_sync == 1:
            return iter(self._local(files, training, seed))
        return iter(self.strategy.distribute_datasets_from_function(
            lambda ctx: self._local(files, training, seed, ctx)))


def _build_state(cfg: ElectraConfig, opts: RunOptions, strategy, inputs: _Inputs):
    """(step function, checkpoint manager, training iterator), restored from the latest
    checkpoint of --model_dir or warm-started from --init_checkpoint. Call in strategy.scope()."""
    pre = cfg.pretrain
    replicas = strategy.num_replicas_in_sync
    model = build_pretrainer(cfg)
    optimizer = optimization.pretraining_optimizer(
        pre.learning_rate, pre.train_steps, pre.warmup_steps, pre.weight_decay,
        pre.adam_epsilon, pre.adam_bias_correction)
    step_fn = PretrainStep(model, optimizer, pre, strategy, opts.accumulation_steps,
                           opts.jit_compile)
    state = {"model": model, "optimizer": optimizer}
    if step_fn.loss_scale is not None:
        state["loss_scale"] = step_fn.loss_scale
    latest = tf.train.latest_checkpoint(opts.model_dir)  # saved as ckpt-<step>
    resumed_step = int(latest.rsplit("-", 1)[1]) if latest else 0
    iterator = inputs.iterator(opts.train_files, True,
                               pre.seed + (resumed_step if replicas > 1 else 0))
    if replicas == 1:
        state["iterator"] = iterator
    checkpoint = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(checkpoint, opts.model_dir, opts.keep_checkpoints)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("resumed from %s at step %d", manager.latest_checkpoint,
                     int(optimizer.iterations))
    elif opts.init_checkpoint:
        checkpoints.warm_start(model, opts.init_checkpoint)
    return step_fn, manager, iterator


class _Report:
    """What pretraining reports: the progress line, TensorBoard (train/ and eval/), eval."""

    def __init__(self, cfg: ElectraConfig, opts: RunOptions, step_fn: PretrainStep):
        self.cfg, self.opts, self.step_fn = cfg, opts, step_fn
        self.positions = cfg.pretrain.batch_size * cfg.pretrain.max_seq_length  # per step
        self.writer = tf.summary.create_file_writer(f"{opts.model_dir}/train")
        self.eval_writer = tf.summary.create_file_writer(f"{opts.model_dir}/eval")
        self.logged: dict[str, float] = {}

    def accumulate(self, window: dict, sums: dict) -> dict:
        if int(self.step_fn.optimizer.iterations) == 1:  # a new run's first step, alone
            self._check_first_loss(float(sums["loss"]))
        return losses.accumulate(window, sums)

    def _check_first_loss(self, loss: float) -> None:
        expected = losses.expected_initial_loss(self.cfg.model.vocab_size, self.cfg.pretrain)
        if abs(loss - expected) > 5.0:
            logging.warning("first loss %.2f is far from ln(V) + 50 ln 2 = %.2f: check the "
                            "vocabulary and labels", loss, expected)

    def log(self, progress: loop.Progress) -> None:
        total = self.cfg.pretrain.train_steps
        logged = _summarize(progress.sums, progress.window_steps, self.step_fn.optimizer,
                            self.positions)
        logged.update(sequences_per_second=progress.examples_per_second,
                      real_tokens_per_second=progress.rates["input_tokens"])
        _log_line(progress.step, total, logged, progress.eta_seconds,
                  self.cfg.pretrain.objective)
        if progress.step == total:
            _warn_if_discriminator_idle(logged)
        loop.write_summaries(self.writer, progress.step, logged)
        self.logged = logged

    def evaluate(self, step: int, iterator) -> None:
        steps = self.opts.eval_steps
        ev = self.step_fn.evaluate(iterator, tf.constant(steps))
        ev = _summarize({k: v.numpy() for k, v in ev.items()}, steps, None, self.positions)
        logging.info("eval at step %d: %s", step, _fmt(ev))
        loop.write_summaries(self.eval_writer, step, ev)
        self.logged.update({f"eval_{k}": v for k, v in ev.items()})

    def close(self) -> None:
        self.writer.flush()
        self.eval_writer.flush()


def _name_corrupt_shard(error: Exception, files: list[str], step: int,
                        last_checkpoint: str | None) -> None:
    """A record failed its checksum somewhere in a shard (the first records were checked at
    the start) and TF's message names no file: finds it and raises DataError naming it."""
    logging.error("a record failed its checksum; reading all %d shards to find it", len(files))
    bad = pipeline.find_corrupt_files(files)
    if not bad:
        raise error
    raise DataError(f"{'; '.join(bad)} (checksum mismatch or truncated file), met after "
                    f"step {step}; the last checkpoint ({last_checkpoint}) is kept: rebuild "
                    "the shard or leave it out of the file pattern, then rerun the same "
                    "command to resume") from None




def _summarize(sums: dict, steps: int, optimizer, positions: int = 0) -> dict[str, float]:
    """Per-step means and rates of accumulated sums; `positions` = batch x length of a step."""
    out = {k: float(sums[k]) / steps for k in LOSS_KEYS}
    out.update(losses.summarize_metrics(sums))
    if "input_tokens" in sums and positions:  # share of the rows' positions holding text
        out["row_fill"] = float(sums["input_tokens"]) / (steps * positions)
    if "grad_norm" in sums:
        out["grad_norm"] = float(sums["grad_norm"]) / steps
    if optimizer is not None:
        out["learning_rate"] = float(optimizer.learning_rate)
    return out


def _fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def _log_line(step: int, total: int, m: dict[str, float], eta: float,
              objective: str = "electra") -> None:
    """The progress line; the masked-LM baseline has no discriminator and no sampling."""
    rtd = (f"  disc {m['disc_loss']:.4f} ({m['disc_base_ratio']:.2f} of base rate)  mlm_acc "
           f"{m['mlm_accuracy']:.3f}  sampled_acc {m['sampled_accuracy']:.3f}  auc "
           f"{m['disc_auc']:.3f}  precision {m['disc_precision']:.3f}  recall "
           f"{m['disc_recall']:.3f}"
           if objective == "electra" else f"  mlm_acc {m['mlm_accuracy']:.3f}")
    logging.info("step %d/%d  loss %.3f  mlm %.3f%s  lr %.3g  %.1f seq/s  %.0f real tok/s "
                 "(rows %.0f%% full)  ETA %s", step, total, m["loss"], m["mlm_loss"], rtd,
                 m["learning_rate"], m["sequences_per_second"], m["real_tokens_per_second"],
                 100 * m["row_fill"], loop.duration(eta))


IDLE_DISCRIMINATOR = 0.97  # disc_base_ratio at or above which the discriminator knows ~nothing


def _warn_if_discriminator_idle(metrics: dict[str, float]) -> None:
    """At the end of a run: warns when the discriminator's loss is still about that of always
    answering the replaced fraction (it would hand fine-tuning little but a collapsed encoder)."""
    ratio = metrics.get("disc_base_ratio", float("nan"))
    if math.isfinite(ratio) and ratio >= IDLE_DISCRIMINATOR:
        logging.warning("the discriminator's loss ends at %.2f of the base rate's (1.0 = it "
                        "cannot tell replaced tokens at all; AUC %.3f): train longer, or check "
                        "the learning rate and the generator's size", ratio,
                        metrics.get("disc_auc", float("nan")))
