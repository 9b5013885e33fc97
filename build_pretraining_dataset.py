"""Builds pretraining TFRecord shards from text (and learns a WordPiece vocabulary if asked).

  python build_pretraining_dataset.py --input 'corpus/*.txt' --output_dir data/ \
      --vocab_file vocab.txt [--eval_fraction 0.01]
  python build_pretraining_dataset.py --input corpus.txt.gz --output_dir data/ \
      --learn_vocab_size 30522            # writes data/vocab.txt first, then the shards

Input: UTF-8 text (plain or .gz, local or gs://), one sentence or paragraph per line, a blank
line between documents. See electra_tf/data/preprocess.py for the packing and outputs.
"""

from __future__ import annotations

from absl import flags, logging

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("input", None, "Text files or globs (repeat the flag for more).")
flags.DEFINE_string("output_dir", None, "Where shards and dataset_info.json go (local or gs://).")
flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt (one token per line).")
flags.DEFINE_integer("learn_vocab_size", 0, "Learn a vocabulary of this size from the input "
                     "into <output_dir>/vocab.txt (instead of --vocab_file).")
flags.DEFINE_integer("vocab_size", 0, "If set, the vocabulary must have exactly this many "
                     "tokens (the model config's vocab_size).")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example, [CLS] and [SEP]s included.")
flags.DEFINE_integer("num_shards", 0, "Training shards; 0 = sized to the corpus (16 MB of "
                     "text per shard, at most 1000).")
flags.DEFINE_integer("num_processes", 1, "Worker processes; 1 = this process with a thread "
                     "pool, which already uses every core (each extra process first imports "
                     "TensorFlow, ~10 s).")
flags.DEFINE_integer("num_threads", 0, "Threads of the one-process build; 0 = one per core "
                     "(at most 8).")
flags.DEFINE_integer("seed", 0, "Seed of the packing's random choices and the eval split.")
flags.DEFINE_bool("pack_across_documents", False, "Fill each row across document boundaries "
                  "([SEP] between documents) instead of closing it at a document's end as the "
                  "authors' builder does: far less padding on corpora of short documents.")
flags.DEFINE_enum("word_segmenter", "", ["", "jieba"], "Also write Chinese word boundaries "
                  "(feature word_continues) for --whole_word_masking in pretraining: jieba's "
                  "words (pip install 'electra-tf[zh]'). Empty: none (\"##\" pieces still "
                  "mark words for whole-word masking).")
flags.DEFINE_float("eval_fraction", 0.0, "Share of documents held out into eval shards.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (uncased models).")
flags.DEFINE_bool("strict", False, "Fail on non-UTF-8 input instead of replacing bad bytes.")
flags.DEFINE_bool("overwrite", False, "Replace existing dataset files in --output_dir.")


def main(argv: list[str]) -> int:
    del argv
    import tensorflow as tf

    from electra_tf import tokenization
    from electra_tf.data import preprocess

    if not FLAGS.input or not FLAGS.output_dir:
        raise preprocess.DataError("--input and --output_dir are required")
    if bool(FLAGS.vocab_file) == bool(FLAGS.learn_vocab_size):
        raise preprocess.DataError("give exactly one of --vocab_file and --learn_vocab_size")
    expected = FLAGS.vocab_size or None
    if FLAGS.learn_vocab_size:
        files = preprocess.expand_inputs(FLAGS.input)
        tf.io.gfile.makedirs(FLAGS.output_dir)
        vocab = tokenization.learn_vocab(files, FLAGS.learn_vocab_size,
                                         f"{FLAGS.output_dir}/vocab.txt", FLAGS.do_lower_case)
        logging.info("learned %d tokens into %s", vocab.size, vocab.path)
        if expected and vocab.size != expected:
            raise tokenization.VocabError(f"{vocab.path} has {vocab.size} tokens but "
                                          f"--vocab_size is {expected}")
    else:
        vocab = tokenization.load_vocab(FLAGS.vocab_file, expected)
    options = preprocess.BuildOptions(
        max_seq_length=FLAGS.max_seq_length, num_shards=FLAGS.num_shards,
        num_processes=FLAGS.num_processes, num_threads=FLAGS.num_threads, seed=FLAGS.seed,
        eval_fraction=FLAGS.eval_fraction, pack_across_documents=FLAGS.pack_across_documents,
        lower_case=FLAGS.do_lower_case, strict=FLAGS.strict, overwrite=FLAGS.overwrite,
        word_segmenter=FLAGS.word_segmenter)
    info = preprocess.build(FLAGS.input, vocab, FLAGS.output_dir, options)
    print(f"{info['train_examples']} train / {info['eval_examples']} eval examples, "
          f"{info['tokens']} tokens ({100 * info['unk_share']:.2f}% [UNK], "
          f"{100 * info['truncated_tokens'] / max(1, info['tokens']):.1f}% cut by the row length),"
          f" rows {100 * info['row_fill']:.0f}% full, "
          f"{info['tokens_per_second']} tokens/s -> {FLAGS.output_dir}")
    for i, text in enumerate(preprocess.example_texts(FLAGS.output_dir, vocab), start=1):
        print(f"example {i}: {text}")
    for warning in info["warnings"]:  # also logged when found; repeated after the counts
        print(f"warning: {warning}")
    return 0


def run() -> None:
    """Entry point: bad input ends with one clear line and exit code 2."""
    from electra_tf import cli
    from electra_tf.errors import DataError, VocabError

    cli.run(main, (DataError, VocabError))


if __name__ == "__main__":
    run()
