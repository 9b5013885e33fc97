"""Fine-tuning's file edges: initial weights in, predictions out.

Initial weights (`initialize`), all into the TaskModel's discriminator only (never a head):
  - a pretraining run's directory or checkpoint prefix (`run_pretraining.py --model_dir`):
    the discriminator of the ElectraPretrainer saved as `model`; the generator, optimizer
    slots and data iterator in the checkpoint are ignored;
  - an init checkpoint written by the converters (official TF1 or Hugging Face weights ->
    `convert_tf1.save_init_checkpoint`, same layout: `model` = ElectraPretrainer);
  - a fine-tuning seed directory (`model` = TaskModel: its discriminator; e.g. RTE from MNLI);
  - an exported SavedModel directory whose variables hold the TaskModel or the pretrainer
    under `model` or at the root.
A checkpoint that lacks any discriminator variable is an error, not a silent random init.

Predictions (`write_predictions`), under the seed's directory:
  dev: dev[_<name>]_predictions.tsv (id, gold, prediction); tagging: CoNLL columns
  word gold prediction (conlleval's input); SQuAD: *_predictions.json (answers after the
  no-answer threshold), *_null_odds.json, *_nbest.json.
  test: GLUE tasks in the GLUE submission format (test/<CoLA|SST-2|...>.tsv: index,
  prediction); other tasks test[_<name>]_predictions.tsv / .txt / .json (with the gold
  column when the task's test_labels is set).
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.atomic import write_atomic


def reinitialize_top_blocks(encoder, count: int) -> None:
    """Gives the top `count` transformer blocks of `encoder` fresh initial weights (the same
    initializers as a new model; Keras' global seed makes them reproducible)."""
    if count:
        logging.info("re-initializing the top %d of %d encoder blocks", count,
                     len(encoder.blocks))
    for block in encoder.blocks[len(encoder.blocks) - count:]:
        fresh = type(block).from_config(block.get_config())
        fresh.build((None, None, encoder.hidden_size))
        for old, new in zip(block.weights, fresh.weights, strict=True):
            old.assign(new)


def top_direction_share(table: np.ndarray) -> float:
    """[V, E] embedding table -> the share of its centred variance along the first principal
    direction (random rows: about (1 + sqrt(E/V))^2 / E; a briefly pretrained table
    concentrates it)."""
    centred = table - table.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)  # [min(V, E)]
    return float(singular[0] ** 2 / np.sum(singular ** 2))


def remove_top_directions(embeddings, count: int) -> None:
    """All-but-the-top (Mu & Viswanath, ICLR 2018) on the word-embedding table: removes the
    mean row and the `count` leading principal directions, then rescales the rows to the old
    median norm. A tied generator softmax trained briefly with Adam moves every row along one
    shared "frequency" direction (rows of rare tokens one way, frequent tokens the other),
    which drowns the differences between words that fine-tuning needs."""
    table = embeddings.word_embeddings.numpy()  # [V, E]
    vocab_size, width = table.shape
    random_share = (1 + (width / vocab_size) ** 0.5) ** 2 / width  # Marchenko-Pastur edge
    logging.info("word embeddings: %.0f%% of their variance along one direction (random "
                 "rows: about %.0f%%)%s", 100 * top_direction_share(table),
                 100 * random_share, f"; removing the top {count}" if count else "")
    if not count:
        return
    centred = table - table.mean(axis=0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)  # [E, E]
    top = directions[:count]  # [count, E]
    flat = centred - (centred @ top.T) @ top
    scale = np.median(np.linalg.norm(table, axis=1)) / np.median(np.linalg.norm(flat, axis=1))
    embeddings.word_embeddings.assign((flat * scale).astype(table.dtype))


def _write(path: str, text: str) -> None:
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
    write_atomic(path, text.encode("utf-8"))


def write_predictions(cfg, data, eval_set, split: str, predictions, seed_dir: str) -> None:
    """Writes one evaluation set's predictions (formats in the module docstring)."""
    spec = cfg.task
    stem = split if eval_set.name == split else f"{split}_{eval_set.name}"
    examples = eval_set.examples
    if spec.kind == "squad":
        for key in ("predictions", "null_odds", "nbest"):
            if key == "null_odds" and not predictions[key]:
                continue
            _write(f"{seed_dir}/{stem}_{key}.json",
                   json.dumps(predictions[key], indent=1, sort_keys=True))
        return
    if spec.kind == "tagging":
        lines = []
        for example, tags in zip(examples, predictions):
            gold = example.label or [None] * len(tags)
            for word, g, p in zip(example.texts, gold, tags):
                lines.append(f"{word} {g} {p}" if g is not None else f"{word} {p}")
            lines.append("")
        _write(f"{seed_dir}/{stem}_predictions.txt", "\n".join(lines) + "\n")
        return
    if split == "test" and spec.submission_name:
        names = dict(zip([name for name, _ in spec.split_files("test")], spec.submission_name))
        rows = [f"{i}\t{p:.3f}" if isinstance(p, float) else f"{i}\t{p}"
                for i, p in enumerate(predictions)]
        _write(f"{seed_dir}/test/{names[eval_set.name]}.tsv",
               "index\tprediction\n" + "\n".join(rows) + "\n")
        return
    labelled = spec.labelled(split)
    header = "id\tlabel\tprediction" if labelled else "id\tprediction"
    rows = []
    for example, p in zip(examples, predictions):
        value = f"{p:.6g}" if isinstance(p, float) else p
        rows.append(f"{example.id}\t{example.label}\t{value}" if labelled
                    else f"{example.id}\t{value}")
    _write(f"{seed_dir}/{stem}_predictions.tsv", header + "\n" + "\n".join(rows) + "\n")
