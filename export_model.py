"""Exports a SavedModel for serving: the pretrained discriminator encoder or a fine-tuned model.

  # the encoder of a pretraining run (or of a converted checkpoint directory)
  python export_model.py --checkpoint=runs/small --vocab_file=vocab.txt \
      --output_dir=serving/electra_small --max_seq_length=128
  # a fine-tuned model (run_finetuning.py's --output_dir; labels from the task or the flag)
  python export_model.py --finetune_dir=runs/sst --label_names=negative,positive \
      --output_dir=serving/sst

Signatures: serving_default (raw text), serving_pair (two texts), serving_ids (input_ids,
input_mask, segment_ids), tokenize, tokenize_pair; see electra_tf/export.py. The export is
reloaded and checked against the in-memory model before it is moved into place. Loading it
needs `import tensorflow_text` first.
"""

from __future__ import annotations

from absl import flags

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Encoder export: a pretraining --model_dir, a converted "
                    "directory (convert_checkpoint.py) or a checkpoint prefix.")
flags.DEFINE_string("config_json", None, "Encoder export: the run's config.json (default: next "
                    "to the checkpoint); without a vocab_size, --vocab_file's size.")
flags.DEFINE_string("finetune_dir", None, "Task export: a run_finetuning.py --output_dir.")
flags.DEFINE_integer("seed", 0, "Task export: which seed_<n> to export.")
flags.DEFINE_list("label_names", None, "Classification/tagging label names in output order "
                  "(default: the task's fixed label set).")
flags.DEFINE_list("regression_range", None, "Regression: low,high of the training labels "
                  "(default: the task's).")
flags.DEFINE_string("vocab_file", None, "vocab.txt (task export default: the fine-tuning's).")
flags.DEFINE_bool("do_lower_case", None, "Lower-case raw text (default: uncased for the "
                  "encoder; the fine-tuning's setting for a task).")
flags.DEFINE_integer("max_seq_length", None, "Pieces per example, [CLS]/[SEP] included "
                     "(default: 128 for the encoder; the fine-tuning's for a task).")
flags.DEFINE_string("output_dir", None, "SavedModel directory to write.")
flags.DEFINE_bool("jit_compile", False, "Compile the model part with XLA: faster on CPU; the "
                  "serving runtime must allow XLA (TF Serving: --xla_cpu_compilation_enabled).")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output_dir.")


def main(argv: list[str]) -> int:
    del argv
    from electra_tf import checkpoints, export
    from electra_tf.tokenization import load_vocab

    if bool(FLAGS.checkpoint) == bool(FLAGS.finetune_dir) or not FLAGS.output_dir:
        raise export.ExportError("give --output_dir and exactly one of --checkpoint (encoder) "
                                 "and --finetune_dir (fine-tuned task)")
    settings = {"vocab_file": FLAGS.vocab_file, "lower_case": True, "max_seq_length": 128,
                "max_query_length": 64, "label_names": (), "regression_range": (0.0, 1.0)}
    if FLAGS.checkpoint:  # vocab_size: the config's, else the vocabulary's
        size = load_vocab(FLAGS.vocab_file).size if FLAGS.vocab_file else None
        model = checkpoints.load_pretrainer(FLAGS.checkpoint, FLAGS.config_json,
                                             size).discriminator
    else:
        model, saved = export.load_finetuned(FLAGS.finetune_dir, FLAGS.seed)
        settings.update({k: v for k, v in saved.items() if v not in (None, ())})
    overrides = {"vocab_file": FLAGS.vocab_file, "lower_case": FLAGS.do_lower_case,
                 "max_seq_length": FLAGS.max_seq_length, "label_names": FLAGS.label_names,
                 "regression_range": FLAGS.regression_range}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if not settings["vocab_file"]:
        raise export.ExportError("--vocab_file is required")
    low, high = (float(x) for x in settings["regression_range"])
    diffs = export.export(
        model, load_vocab(settings["vocab_file"]), FLAGS.output_dir, settings["max_seq_length"],
        settings["lower_case"], tuple(settings["label_names"]), (low, high),
        settings["max_query_length"], FLAGS.overwrite, jit_compile=FLAGS.jit_compile)
    print(f"wrote {FLAGS.output_dir} ({export.read_info(FLAGS.output_dir)['kind']}); reloaded "
          f"and checked: max abs difference {max(diffs.values()):.2g}")
    return 0


def run() -> None:
    """Entry point: bad input ends with one clear line and exit code 2."""
    from electra_tf import cli
    from electra_tf.errors import ConversionError, ExportError, VocabError

    cli.run(main, (ConversionError, ExportError, VocabError))


if __name__ == "__main__":
    run()
