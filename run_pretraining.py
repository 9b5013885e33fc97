"""Pretrains ELECTRA: python run_pretraining.py --flagfile=configs/small.flags --model_dir=...

Flags in a flagfile can be overridden on the command line (later flags win). The model and
recipe come from --model_size (tiny/small/base/large), optionally --config_json, then the
individual flags below; the model's vocab_size is --vocab_file's size unless --config_json sets
it (a resumed run keeps its own). The resolved config is saved as <model_dir>/config.json.
"""

from __future__ import annotations

from absl import flags, logging

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)

FLAGS = flags.FLAGS
flags.DEFINE_string("model_size", "small", "Preset: tiny, small, base or large.")
flags.DEFINE_string("config_json", None, "JSON file with {'model': {...}, 'pretrain': {...}} "
                    "overrides of the preset.")
flags.DEFINE_string("model_dir", None, "Checkpoints, config.json and TensorBoard logs "
                    "(local or gs://). An existing run there is resumed.")
flags.DEFINE_string("train_files", None, "TFRecord shards (comma-separated globs).")
flags.DEFINE_string("eval_files", "", "Held-out TFRecord shards for evaluation.")
flags.DEFINE_string("vocab_file", None, "The vocab.txt the shards were built with; its size "
                    "is the model's vocab_size unless --config_json sets it.")
flags.DEFINE_enum("strategy", "auto", ["auto", "tpu", "mirrored", "multi_worker", "one_device",
                                       "cpu"], "Distribution strategy.")
flags.DEFINE_string("tpu", "", "Cloud TPU name, 'local', or grpc://host:port.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Compute precision (variables and losses stay float32); mixed_float16 adds "
                  "dynamic loss scaling.")
flags.DEFINE_bool("jit_compile", False, "Compile the training step with XLA.")
flags.DEFINE_integer("batch_size", None, "Global batch size (all replicas together).")
flags.DEFINE_integer("train_steps", None, "Total optimizer steps.")
flags.DEFINE_float("learning_rate", None, "Peak learning rate.")
flags.DEFINE_integer("warmup_steps", None, "Linear warmup steps.")
flags.DEFINE_float("mask_prob", None, "Share of tokens masked per sequence.")
flags.DEFINE_bool("adam_bias_correction", None, "Adam with bias correction (the authors' "
                  "optimizer has none).")
flags.DEFINE_float("generator_fraction", None, "Generator width as a share of the "
                   "discriminator's (0.25 Small/Large, 1/3 Base, 1.0 for Small++).")
flags.DEFINE_enum("objective", None, ["electra", "mlm"], "electra (default): replaced token "
                  "detection; mlm: the BERT baseline, a masked LM on the discriminator-sized "
                  "encoder with 80/10/10 masking (for comparisons).")
flags.DEFINE_integer("max_seq_length", None, "Sequence length of the shards.")
flags.DEFINE_integer("seed", None, "Run seed (masking, sampling, dropout, shuffling).")
flags.DEFINE_integer("steps_per_loop", 100, "Steps per tf.function call (host round trip).")
flags.DEFINE_integer("save_every", 1000, "Checkpoint interval in steps.")
flags.DEFINE_integer("keep_checkpoints", 5, "Checkpoints kept.")
flags.DEFINE_integer("log_every", 100, "Progress line and summaries interval in steps.")
flags.DEFINE_integer("eval_every", 1000, "Held-out evaluation interval in steps.")
flags.DEFINE_integer("eval_steps", 50, "Batches per evaluation.")
flags.DEFINE_integer("accumulation_steps", 1, "Gradient accumulation: micro-batches per step.")
flags.DEFINE_string("init_checkpoint", "", "Warm start from these weights (no optimizer state): "
                    "a checkpoint prefix or a directory holding one (e.g. a converted "
                    "init/<name>; pass its config.json as --config_json).")
flags.DEFINE_bool("deterministic", False, "Deterministic ops and input order (exact resumption "
                  "on CPU; slower).")
flags.DEFINE_integer("stop_after", 0, "Stop after this many steps in this process, with a "
                     "checkpoint (0: run to train_steps).")

_PRETRAIN_FLAGS = ("batch_size", "train_steps", "learning_rate", "warmup_steps", "mask_prob",
                   "max_seq_length", "seed", "adam_bias_correction")


def resolve_config():
    """Preset -> JSON overrides -> flag overrides, merged first and validated once."""
    import json

    import tensorflow as tf

    from electra_tf.config import BERT_MLM, ElectraConfig, get_config
    from electra_tf.errors import ConfigError
    from electra_tf.pretraining import default_vocab_size

    merged = get_config(FLAGS.model_size).to_dict()
    # The vocabulary's size (a resumed run's own) unless --config_json sets it.
    merged["model"]["vocab_size"] = default_vocab_size(FLAGS.model_dir, FLAGS.vocab_file)
    if FLAGS.config_json:
        if not tf.io.gfile.exists(FLAGS.config_json):
            raise FileNotFoundError(f"--config_json={FLAGS.config_json}: no such file")
        with tf.io.gfile.GFile(FLAGS.config_json) as f:
            overrides = json.load(f)
        for section, values in overrides.items():
            if section not in merged or not isinstance(values, dict):
                raise ConfigError(f"{FLAGS.config_json}: unknown section {section!r}; expected "
                                  "'model' and/or 'pretrain' objects")
            merged[section].update(values)
    merged["pretrain"].update({k: getattr(FLAGS, k) for k in _PRETRAIN_FLAGS
                               if getattr(FLAGS, k) is not None})
    if FLAGS.objective == "mlm":
        merged["pretrain"].update(BERT_MLM)
    elif FLAGS.objective:
        merged["pretrain"]["objective"] = FLAGS.objective
    if FLAGS.generator_fraction is not None:
        merged["model"]["generator_fraction"] = FLAGS.generator_fraction
    return ElectraConfig.from_dict(merged)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}")
    from electra_tf.pretraining import RunOptions, run

    for name in ("model_dir", "train_files", "vocab_file"):
        if not getattr(FLAGS, name):
            raise ValueError(f"--{name} is required")
    init = FLAGS.init_checkpoint
    if init:  # a wrong path is the first thing to hear about; a directory means its checkpoint
        from electra_tf.checkpoints import resolve_checkpoint

        init = resolve_checkpoint(init)
    cfg = resolve_config()
    opts = RunOptions(
        model_dir=FLAGS.model_dir, train_files=FLAGS.train_files, vocab_file=FLAGS.vocab_file,
        eval_files=FLAGS.eval_files, strategy=FLAGS.strategy, tpu=FLAGS.tpu,
        precision=FLAGS.precision, jit_compile=FLAGS.jit_compile,
        steps_per_loop=FLAGS.steps_per_loop, save_every=FLAGS.save_every,
        keep_checkpoints=FLAGS.keep_checkpoints, log_every=FLAGS.log_every,
        eval_every=FLAGS.eval_every, eval_steps=FLAGS.eval_steps,
        accumulation_steps=FLAGS.accumulation_steps, init_checkpoint=init,
        deterministic=FLAGS.deterministic, stop_after=FLAGS.stop_after)
    final = run(cfg, opts)
    logging.info("done: %s", {k: round(v, 4) for k, v in final.items()})


def entry() -> None:
    """Bad flags, configs and data end with one clear line and exit code 2."""
    from electra_tf import cli
    from electra_tf.errors import (
        ConfigError,
        DataError,
        NonFiniteLossError,
        StrategyError,
        VocabError,
    )

    cli.run(main, (ConfigError, DataError, StrategyError, VocabError, ValueError,
                   FileNotFoundError), stopped=(NonFiniteLossError,))


if __name__ == "__main__":
    entry()
