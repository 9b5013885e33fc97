"""How a pretraining run's word embeddings depend on how often each token was seen.

Counts every token id in the run's training shards, then groups the discriminator's word
embedding rows by that count and reports, per group: the median row norm, the median
coordinate along the table's first principal direction, and the mean cosine between rows of
the group (random rows: about 0). Also the correlation of that coordinate with log(1 + count),
and which share of a task's tokens falls in each group (how much of the task sits in rows that
pretraining barely trained).

    .venv/bin/python experiments/embedding_frequency.py --checkpoint runs/demo/pretrain \
        --train_files 'runs/demo/data/pretrain_data*' --vocab_file runs/demo/data/vocab.txt \
        --task_file demo_data/sentiment/train.tsv

Prints a markdown table; --out also writes it with the arguments, the date and the CPU as JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import tensorflow as tf

from electra_tf.checkpoints import load_pretrainer
from electra_tf.machine import describe
from electra_tf.tokenization import WordPieceTokenizer, load_vocab

BINS = (0, 1, 10, 100, 1000, None)  # token counts: [0,1), [1,10), ... [1000, inf)


def token_counts(pattern: str, vocab_size: int) -> np.ndarray:
    """[V] how often each id occurs in the `input_ids` of the shards matching `pattern`."""
    counts = np.zeros(vocab_size, np.int64)
    feature = {"input_ids": tf.io.VarLenFeature(tf.int64)}
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)).batch(1024):
        ids = tf.io.parse_example(record, feature)["input_ids"].values.numpy()
        np.add.at(counts, ids, 1)
    return counts


def word_embeddings(checkpoint: str) -> np.ndarray:
    """[V, E] the discriminator's word-embedding table of a pretraining run's checkpoint."""
    return load_pretrainer(checkpoint).embeddings.word_embeddings.numpy()


def mean_cosine(rows: np.ndarray, limit: int = 500) -> float:
    """Mean pairwise cosine between the first `limit` rows [n, E]."""
    unit = rows[:limit] / np.linalg.norm(rows[:limit], axis=1, keepdims=True)
    sims = unit @ unit.T
    return float(sims[np.triu_indices(len(unit), 1)].mean())


def report(table: np.ndarray, counts: np.ndarray, task_ids: np.ndarray | None) -> dict:
    centred = table - table.mean(axis=0)
    _, singular, directions = np.linalg.svd(centred, full_matrices=False)
    along = centred @ directions[0]  # [V]
    correlation = np.corrcoef(along, np.log1p(counts))[0, 1]
    along *= np.sign(correlation)  # + = the frequent side
    norms = np.linalg.norm(table, axis=1)
    groups = []
    for low, high in zip(BINS[:-1], BINS[1:]):
        rows = (counts >= low) & (counts < (high or np.inf))
        if rows.sum() < 2:
            continue
        group = {"counts": f"[{low}, {high or 'inf'})", "rows": int(rows.sum()),
                 "median_norm": float(np.median(norms[rows])),
                 "median_along_top": float(np.median(along[rows])),
                 "mean_cosine": mean_cosine(table[rows])}
        if task_ids is not None:
            seen = counts[task_ids]
            group["task_token_share"] = float(((seen >= low) & (seen < (high or np.inf))).mean())
        groups.append(group)
    return {"top_direction_share": float(singular[0] ** 2 / np.sum(singular ** 2)),
            "corr_top_direction_log_count": float(abs(correlation)),
            "groups": groups}


def markdown(result: dict) -> str:
    task = "task_token_share" in result["groups"][0]
    lines = ["| pretraining count | rows | median norm | median along top direction | "
             "mean cosine |" + (" share of task tokens |" if task else ""),
             "|---|---|---|---|---|" + ("---|" if task else "")]
    for g in result["groups"]:
        lines.append(f"| {g['counts']} | {g['rows']} | {g['median_norm']:.3f} | "
                     f"{g['median_along_top']:+.3f} | {g['mean_cosine']:.3f} |"
                     + (f" {g['task_token_share']:.3f} |" if task else ""))
    lines.append(f"\ntop direction: {result['top_direction_share']:.1%} of the centred variance; "
                 f"|correlation| with log(1 + count): {result['corr_top_direction_log_count']:.3f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a pretraining run's model_dir")
    p.add_argument("--train_files", required=True, help="glob of the run's training shards")
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--task_file", default="", help="label<TAB>text rows to locate in the table")
    p.add_argument("--out", default="", help="writes <out>.json")
    a = p.parse_args()
    table = word_embeddings(a.checkpoint)  # [V, E]
    counts = token_counts(a.train_files, table.shape[0])
    task_ids = None
    if a.task_file:
        with open(a.task_file, encoding="utf-8") as f:
            texts = [line.rstrip("\n").split("\t", 1)[1] for line in f if line.strip()]
        tokenizer = WordPieceTokenizer(load_vocab(a.vocab_file))
        task_ids = tokenizer.tokenize(tf.constant(texts)).flat_values.numpy()
    result = report(table, counts, task_ids)
    print(markdown(result))
    if a.out:
        with open(f"{a.out}.json", "w") as f:
            json.dump({**describe(), "arguments": vars(a), **result}, f, indent=1)


if __name__ == "__main__":
    main()
