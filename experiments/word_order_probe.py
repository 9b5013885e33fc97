"""Does a pretraining run know word order? Paired, zero-shot, against counts of the same corpus.

For each of --pairs texts (the `written` rows of a word_order_task.py file: text no run read),
the same text with one pair of neighbouring words (characters, with --chars) swapped. Each
scorer prefers one of the two; a scorer that knows nothing of order prefers the original half the
time. Scorers:
  - bigram: a table of neighbouring-piece counts over --corpus (the pretraining text), tokenized
    with the run's vocabulary (add-0.1 smoothing): what plain counting learns from that text;
  - discriminator: the sum over pieces of P(replaced); the lower, the more natural;
  - generator: pseudo-log-likelihood, each piece masked in turn and scored by the masked LM
    (with --objective=mlm, the run's one network; it has no discriminator score).
Also prints the corpus's unigram entropy and the bigram table's cross-entropy on the original
texts (nats per piece): a generator whose held-out MLM loss sits near the first has learned
token frequencies and little else; the second is what counting neighbours reaches on text it
did not count. And, per run, how alike the position embeddings of neighbouring and of distant
positions are.

    .venv/bin/python experiments/word_order_probe.py --run zh=runs/zh/pretrain \
        --vocab_file runs/zh/data/vocab.txt --task_file data/word_order_zh/dev.tsv --chars \
        --corpus ../shared/data/zh/corpus/zh.txt --out experiments/results/word_order_probe_zh
"""

from __future__ import annotations

import argparse
import collections
import json
import math

import numpy as np
import tensorflow as tf
import word_order_task as wot

from electra_tf.checkpoints import load_pretrainer
from electra_tf.machine import describe
from electra_tf.models import MaskedLMPretrainer
from electra_tf.tokenization import WordPieceTokenizer, load_vocab, read_lines


def text_pairs(task_file: str, chars: bool, count: int, max_position: int, seed: int
               ) -> list[tuple[str, str]]:
    """(original, swapped) for the first `count` written rows that have a pair to swap."""
    rng = np.random.default_rng(seed)
    pairs = []
    with open(task_file, encoding="utf-8") as f:
        for line in f:
            label, text = line.rstrip("\n").split("\t", 1)
            swapped = (wot.swap_neighbours(wot.units_of(text, chars), max_position, rng)
                       if label == "written" else None)
            if swapped:
                pairs.append((text, wot.join_units(swapped, chars)))
            if len(pairs) == count:
                break
    return pairs


class Counts:
    """Unigram and bigram counts of pieces (with [CLS]/[SEP] at the ends of each line)."""

    def __init__(self, lines: list[str], tokenizer: WordPieceTokenizer, cls: int, sep: int,
                 vocab_size: int, chunk: int = 5000):
        self.unigrams: collections.Counter = collections.Counter()
        self.bigrams: collections.Counter = collections.Counter()
        self.vocab_size = vocab_size
        for start in range(0, len(lines), chunk):
            for ids in tokenizer.tokenize(tf.constant(lines[start:start + chunk])).to_list():
                ids = [cls, *ids, sep]
                self.unigrams.update(ids)
                self.bigrams.update(zip(ids, ids[1:]))

    def log_prob(self, ids: list[int], smoothing: float = 0.1) -> float:
        return sum(math.log((self.bigrams[(a, b)] + smoothing)
                            / (self.unigrams[a] + smoothing * self.vocab_size))
                   for a, b in zip(ids, ids[1:]))

    def unigram_entropy(self, skip: tuple[int, ...]) -> float:
        counts = [v for k, v in self.unigrams.items() if k not in skip]
        n = sum(counts)
        return -sum(v / n * math.log(v / n) for v in counts)


def position_similarity(model, apart: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """Mean cosine between the position embeddings of positions i and i + d, rows centred:
    a model that has learned where words sit has neighbours closer than distant positions
    (a released BERT-family encoder: about 0.85 at d = 1); random rows give about 0."""
    table = next(v for v in model.embeddings.weights if "position_embeddings" in v.path).numpy()
    rows = table - table.mean(axis=0)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return {f"cos_{d}_apart": round(float((rows[:-d] * rows[d:]).sum(axis=1).mean()), 4)
            for d in apart}


def padded(rows: list[list[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
    return ids, (ids > 0).astype(np.int32)


def discriminator_scores(model, rows: list[list[int]], length: int) -> np.ndarray:
    """Sum of P(replaced) over each row's pieces, [CLS] and [SEP] excluded."""
    ids, mask = padded(rows, length)
    logits = model.discriminator(ids, mask, np.zeros_like(ids), training=False)["disc_logits"]
    inner = mask.copy()
    inner[:, 0] = 0
    inner[np.arange(len(rows)), [len(r) - 1 for r in rows]] = 0
    return (tf.sigmoid(tf.cast(logits, tf.float32)).numpy() * inner).sum(axis=1)


def masked_lm_logits(model, ids, mask, positions):
    """[B, N, V] from the run's masked LM: the generator, or with --objective=mlm the
    discriminator-sized encoder under its MLM head."""
    if isinstance(model, MaskedLMPretrainer):
        sequence = model.discriminator.encoder(ids, mask, np.zeros_like(ids), training=False)
        return model.mlm_head(sequence, positions)
    return model.generator(ids, mask, np.zeros_like(ids), positions, training=False)


def pseudo_log_likelihood(model, row: list[int], length: int, mask_id: int) -> float:
    """Sum over inner pieces of log P(piece | the row with that piece masked)."""
    inner = np.arange(1, len(row) - 1, dtype=np.int32)
    ids, mask = padded([row] * len(inner), length)
    ids[np.arange(len(inner)), inner] = mask_id
    logits = masked_lm_logits(model, ids, mask, inner[:, None])
    log_probs = tf.nn.log_softmax(tf.cast(logits[:, 0], tf.float32)).numpy()  # [n, V]
    return float(log_probs[np.arange(len(inner)), np.array(row)[inner]].sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", default=[], help="name=pretraining model_dir")
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--task_file", required=True, help="a word_order_task.py TSV")
    p.add_argument("--corpus", required=True, help="the pretraining text, for the counts")
    p.add_argument("--chars", action="store_true")
    p.add_argument("--cased", action="store_true")
    p.add_argument("--pairs", type=int, default=400)
    p.add_argument("--max_position", type=int, default=24)
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="writes <out>.json")
    a = p.parse_args()
    vocab = load_vocab(a.vocab_file)
    tokenizer = WordPieceTokenizer(vocab, lower_case=not a.cased)
    pairs = text_pairs(a.task_file, a.chars, a.pairs, a.max_position, a.seed)

    def encode(text: str) -> list[int]:
        return [vocab.cls_id, *tokenizer.ids(text)[:a.max_seq_length - 2], vocab.sep_id]

    originals, swapped = [encode(o) for o, _ in pairs], [encode(s) for _, s in pairs]
    counts = Counts([line for line in read_lines(a.corpus) if line.strip()], tokenizer,
                    vocab.cls_id, vocab.sep_id, vocab.size)
    positions: dict[str, dict[str, float]] = {}
    prefers = {"bigram_counts": float(np.mean([counts.log_prob(o) > counts.log_prob(s)
                                               for o, s in zip(originals, swapped)]))}
    for spec in a.run:
        name, path = spec.split("=", 1)
        model = load_pretrainer(path)
        positions[name] = position_similarity(model)
        if not isinstance(model, MaskedLMPretrainer):  # a masked LM's RTD head is unused
            prefers[f"{name}_discriminator"] = float(np.mean(
                discriminator_scores(model, originals, a.max_seq_length)
                < discriminator_scores(model, swapped, a.max_seq_length)))
        prefers[f"{name}_generator"] = float(np.mean(
            [pseudo_log_likelihood(model, o, a.max_seq_length, vocab.mask_id)
             > pseudo_log_likelihood(model, s, a.max_seq_length, vocab.mask_id)
             for o, s in zip(originals, swapped)]))
    pieces = sum(len(o) - 1 for o in originals)
    result = {**describe(), "arguments": vars(a), "pairs": len(pairs),
              "unigram_entropy_nats": round(counts.unigram_entropy(vocab.never_masked_ids), 3),
              "bigram_cross_entropy_nats": round(
                  -sum(counts.log_prob(o) for o in originals) / pieces, 3),
              "prefers_original": {k: round(v, 4) for k, v in prefers.items()},
              "position_embeddings": positions}
    with open(f"{a.out}.json", "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result["prefers_original"]), json.dumps(positions), "unigram entropy",
          result["unigram_entropy_nats"], "bigram cross-entropy",
          result["bigram_cross_entropy_nats"])


if __name__ == "__main__":
    main()
