"""Pretrains ELECTRA: python run_pretraining.py --flagfile=configs/small.flags --model_dir=...

Flags in a flagfile can be overridden on the command line (later flags win). The model and
recipe come from --model_size (tiny/small/base/large), optionally --config_json, then the
individual flags below (one per field of ModelConfig and PretrainConfig; unset, they keep the
preset's value); the model's vocab_size is --vocab_file's size unless --config_json or
--vocab_size sets it (a resumed run keeps its own). Where and how to run: one flag per field of
RunOptions. The resolved config is saved as <model_dir>/config.json.
"""

from __future__ import annotations

from absl import flags, logging

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)
from electra_tf import flagdefs
from electra_tf.config import PRECISIONS, ModelConfig, PretrainConfig, RunOptions

FLAGS = flags.FLAGS
flags.DEFINE_string("model_size", "small", "Preset: tiny, small, base or large.")
flags.DEFINE_string("config_json", None, "JSON file with {'model': {...}, 'pretrain': {...}} "
                    "overrides of the preset.")
STRATEGIES = ["auto", "tpu", "mirrored", "multi_worker", "one_device", "cpu"]
flagdefs.define(RunOptions, {
    "model_dir": "Checkpoints, config.json and TensorBoard logs (local or gs://). An existing "
                 "run there is resumed.",
    "train_files": "TFRecord shards (comma-separated globs).",
    "vocab_file": "The vocab.txt the shards were built with; its size is the model's "
                  "vocab_size unless --config_json or --vocab_size sets it.",
    "eval_files": "Held-out TFRecord shards for evaluation.",
    "strategy": "Distribution strategy.",
    "tpu": "Cloud TPU name, 'local', or grpc://host:port.",
    "precision": "Compute precision (variables and losses stay float32); mixed_float16 adds "
                 "dynamic loss scaling.",
    "jit_compile": "Compile the training step with XLA.",
    "steps_per_loop": "Steps per tf.function call (host round trip).",
    "save_every": "Checkpoint interval in steps.",
    "keep_checkpoints": "Checkpoints kept.",
    "log_every": "Progress line and summaries interval in steps.",
    "eval_every": "Held-out evaluation interval in steps.",
    "eval_steps": "Batches per evaluation.",
    "accumulation_steps": "Gradient accumulation: micro-batches per step.",
    "init_checkpoint": "Warm start from these weights (no optimizer state): a checkpoint prefix "
                       "or a directory holding one (e.g. a converted init/<name>; pass its "
                       "config.json as --config_json).",
    "deterministic": "Deterministic ops and input order (exact resumption on CPU; slower).",
    "stop_after": "Stop after this many steps in this process, with a checkpoint (0: run to "
                  "train_steps).",
}, enums={"strategy": STRATEGIES, "precision": PRECISIONS})
flagdefs.define(PretrainConfig, {
    "max_seq_length": "Sequence length of the shards.",
    "mask_prob": "Share of tokens masked per sequence.",
    "max_predictions_per_seq": "Masked positions per sequence (0: int((mask_prob + 0.005) x "
                               "max_seq_length)).",
    "objective": "electra (default): replaced token detection; mlm: the BERT baseline, a "
                 "masked LM on the discriminator-sized encoder with 80/10/10 masking (for "
                 "comparisons).",
    "mask_token_rate": "Share of masked positions shown as [MASK].",
    "random_token_rate": "Share of masked positions shown as a random token (BERT: 0.1).",
    "whole_word_masking": "Mask whole words: \"##\" pieces with their word, and Chinese "
                          "words where the shards hold them (build_pretraining_dataset.py "
                          "--word_segmenter=jieba). Off: the authors' per-token masking.",
    "temperature": "Temperature of the generator's sampling.",
    "disallow_correct": "Never sample the original token as a replacement.",
    "generator_weight": "Weight of the generator's (masked LM) loss.",
    "discriminator_weight": "Weight of the discriminator's loss (the authors' 50).",
    "batch_size": "Global batch size (all replicas together).",
    "train_steps": "Total optimizer steps.",
    "learning_rate": "Peak learning rate.",
    "warmup_steps": "Linear warmup steps.",
    "weight_decay": "Decoupled weight decay.",
    "adam_epsilon": "Adam's epsilon.",
    "adam_bias_correction": "Adam with bias correction (the authors' optimizer has none).",
    "clip_norm": "Global gradient-norm clipping.",
    "seed": "Run seed (masking, sampling, dropout, shuffling).",
}, unset=True, enums={"objective": ["electra", "mlm"]})
flagdefs.define(ModelConfig, {
    "vocab_size": "Vocabulary size (default: --vocab_file's).",
    "embedding_size": "Width of the shared embeddings.",
    "hidden_size": "Discriminator width.",
    "num_layers": "Transformer blocks (generator and discriminator).",
    "num_heads": "Attention heads of the discriminator.",
    "intermediate_size": "Discriminator feed-forward width.",
    "generator_fraction": "Generator width as a share of the discriminator's (0.25 Small/Large, "
                          "1/3 Base, 1.0 for Small++).",
    "max_position_embeddings": "Rows of the position table.",
    "type_vocab_size": "Segment types.",
    "hidden_dropout": "Dropout on hidden states.",
    "attention_dropout": "Dropout on attention probabilities.",
    "initializer_range": "Standard deviation of the truncated normal initializers.",
    "layer_norm_eps": "LayerNorm epsilon.",
    "pooling": "What fine-tuning's classification and regression heads read, [CLS] or the "
               "mean over the text; recorded in config.json, unused by pretraining.",
}, unset=True, enums={"pooling": ["cls", "mean"]})


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
    if FLAGS.objective == "mlm":  # BERT's masking rates, unless a flag sets them
        merged["pretrain"].update(BERT_MLM)
    merged["pretrain"].update(flagdefs.values(PretrainConfig, only_set=True))
    merged["model"].update(flagdefs.values(ModelConfig, only_set=True))
    return ElectraConfig.from_dict(merged)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}")
    import dataclasses

    from electra_tf.pretraining import run

    for name in ("model_dir", "train_files", "vocab_file"):
        if not getattr(FLAGS, name):
            raise ValueError(f"--{name} is required")
    opts = RunOptions(**flagdefs.values(RunOptions))
    if opts.init_checkpoint:  # a wrong path is the first thing to hear about; a directory
        from electra_tf.checkpoints import resolve_checkpoint  # means its checkpoint

        opts = dataclasses.replace(opts, init_checkpoint=resolve_checkpoint(opts.init_checkpoint))
    cfg = resolve_config()
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
