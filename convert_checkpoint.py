"""Converts ELECTRA (and BERT-family) weights between official TF1 checkpoints, Hugging Face,
keras-hub and ours.

  # official TF1 ELECTRA (e.g. the released electra_small/) or BERT (bert_model.ckpt) -> ours
  python convert_checkpoint.py --source=tf1 --input=electra_small --output_dir=init/small
  # a transformers directory: ELECTRA (discriminator, optionally the generator), or a BERT-family
  # encoder (BertModel, BertForMaskedLM, BertForPreTraining, a sentence-transformers model)
  python convert_checkpoint.py --source=hf --input=hf/disc --generator_input=hf/gen \
      --output_dir=init/from_hf
  # a keras-hub ElectraBackbone (or BertBackbone) preset directory -> ours
  python convert_checkpoint.py --source=keras_hub --input=kh_preset --output_dir=init/kh
  # ours (a pretraining --model_dir, or a converted directory) -> transformers / TF1 / keras-hub
  python convert_checkpoint.py --source=ours --input=runs/small --target=hf \
      --vocab_file=vocab.txt --output_dir=hf_out

A BERT encoder or a keras-hub backbone becomes the discriminator's encoder; its pooler and
pretraining heads are listed as skipped, and the discriminator head and the generator
(--generator_fraction of the width; default: the nearest published size's) start fresh.
Our format (`--target=ours`, the default) is model.ckpt + config.json: continue pretraining
with `run_pretraining.py --init_checkpoint=init/small/model.ckpt
--config_json=init/small/config.json ...`, fine-tune with `run_finetuning.py
--init_checkpoint=init/small ...` (it reads the config.json beside the checkpoint).
"""

from __future__ import annotations

from absl import flags

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)

FLAGS = flags.FLAGS
flags.DEFINE_enum("source", None, ["tf1", "hf", "keras_hub", "ours"], "What --input holds.")
flags.DEFINE_enum("target", "ours", ["ours", "hf", "tf1", "keras_hub"], "What to write.")
flags.DEFINE_string("input", None, "TF1 checkpoint (prefix or directory), transformers "
                    "directory (ELECTRA's discriminator or a BERT-family model), keras-hub "
                    "preset directory, or our run/converted directory or prefix.")
flags.DEFINE_string("generator_input", None, "--source=hf: the generator's directory.")
flags.DEFINE_string("config_json", None, "--source=ours: the run's config.json (default: next "
                    "to the checkpoint).")
flags.DEFINE_integer("num_heads", None, "--source=tf1: attention heads (not stored in a "
                     "checkpoint; default: a bert_config.json / config.json beside it, else "
                     "hidden / 64, as every official model).")
flags.DEFINE_float("generator_fraction", None, "A source without a generator (BERT, keras-hub, "
                   "a discriminator alone): the fresh generator's width as a share of the "
                   "discriminator's (default: the nearest published size's, 1/4 or 1/3).")
flags.DEFINE_string("output_dir", None, "Where to write (refused if it exists, unless "
                    "--overwrite).")
flags.DEFINE_string("vocab_file", None, "--target=hf: vocab.txt to ship with the model "
                    "(checked against its vocab_size).")
flags.DEFINE_bool("do_lower_case", True, "--target=hf: the tokenizer's lower-casing.")
flags.DEFINE_bool("overwrite", False, "Replace an existing output.")


def main(argv: list[str]) -> int:
    del argv
    import tensorflow as tf

    from electra_tf import checkpoints, convert, convert_hf, convert_keras_hub, convert_tf1
    from electra_tf.tokenization import load_vocab

    if not FLAGS.source or not FLAGS.input or not FLAGS.output_dir:
        raise convert.ConversionError("--source, --input and --output_dir are required")
    if not tf.io.gfile.exists(FLAGS.input) and not tf.io.gfile.glob(FLAGS.input + ".*"):
        raise convert.ConversionError(f"--input={FLAGS.input}: no such file or directory")
    fraction = FLAGS.generator_fraction
    if FLAGS.source == "tf1":
        model, report = convert_tf1.import_tf1_checkpoint(FLAGS.input, FLAGS.num_heads, fraction)
    elif FLAGS.source == "hf":
        model, report = convert_hf.import_hf_directory(FLAGS.input, FLAGS.generator_input,
                                                       fraction)
    elif FLAGS.source == "keras_hub":
        model, report = convert_keras_hub.import_keras_hub_preset(FLAGS.input, fraction)
    else:
        model, report = checkpoints.load_pretrainer(FLAGS.input, FLAGS.config_json), None
    if report is not None:
        print(report.summary())
    out = FLAGS.output_dir
    if FLAGS.target == "ours":
        written = checkpoints.save_init_checkpoint(model, out, FLAGS.overwrite)
    elif FLAGS.target == "hf":
        vocab = load_vocab(FLAGS.vocab_file) if FLAGS.vocab_file else None
        written = ", ".join(convert_hf.save_hf_directory(model, out, vocab, FLAGS.do_lower_case,
                                                         FLAGS.overwrite).values())
    else:
        if tf.io.gfile.exists(out) and tf.io.gfile.listdir(out) and not FLAGS.overwrite:
            raise convert.ConversionError(f"{out} exists and is not empty; pass --overwrite")
        tf.io.gfile.makedirs(out)
        if FLAGS.target == "tf1":
            written = convert_tf1.write_tf1_checkpoint(model, f"{out}/model.ckpt")
        else:
            convert_keras_hub.keras_hub_backbone(model.discriminator).save_to_preset(out)
            written = f"{out} (keras-hub preset: ElectraBackbone; tanh GELU, untrained pooler)"
    print(f"{FLAGS.source} {FLAGS.input} -> {FLAGS.target} {written}")
    return 0


def run() -> None:
    """Entry point: bad input ends with one clear line and exit code 2."""
    from electra_tf import cli
    from electra_tf.errors import ConversionError, VocabError

    cli.run(main, (ConversionError, VocabError))


if __name__ == "__main__":
    run()
