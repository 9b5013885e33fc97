"""Examples -> fixed-length model features for sentence(-pair) and tagging tasks.

Features (NumPy, [N, L] int32 unless noted; the model's batch keys):
  input_ids, input_mask, segment_ids: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, segment 1
    for `B [SEP]`, padded with [PAD]'s id;
  classification: label_ids [N] int32;  regression: targets [N] float32 (scaled to [0, 1]);
  tagging: label_ids [N, L] and label_weights [N, L] float32: the word's tag on its first
    sub-token (weight 1), weight 0 elsewhere.
Texts longer than max_seq_length are truncated (longest text first, as BERT/ELECTRA) and
counted: the counts come back in `Encoded.truncated` and are logged by the caller. Tagging
sentences are not cut: a long one becomes overlapping windows of whole words.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from electra_tf.data.tasks import Example
from electra_tf.tokenization import Vocab, WordPieceTokenizer

_CHUNK = 2048  # texts per tokenizer call


@dataclasses.dataclass
class Encoded:
    """Model features plus what evaluation needs to map predictions back to examples."""

    features: dict[str, np.ndarray]
    truncated: int = 0  # examples that did not fit (sentences and pairs)
    # tagging: per feature, the positions of its words' first pieces, and its window
    # (example, first word, end word)
    word_starts: list[list[int]] = dataclasses.field(default_factory=list)
    windows: list[tuple[int, int, int]] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.features["input_ids"])


def tokenize(tokenizer: WordPieceTokenizer, texts: list[str]) -> list[list[int]]:
    """Strings -> lists of WordPiece ids, in batches."""
    out: list[list[int]] = []
    for start in range(0, len(texts), _CHUNK):
        ragged = tokenizer.tokenize(tf.constant(texts[start:start + _CHUNK]))
        out.extend(ragged.to_list())
    return out


def pack(vocab: Vocab, first: list[int], second: list[int] | None, length: int
         ) -> tuple[list[int], list[int], list[int]]:
    """`[CLS] first [SEP] (second [SEP])` -> (ids, mask, segments), each padded to `length`."""
    ids = [vocab.cls_id, *first, vocab.sep_id]
    segments = [0] * len(ids)
    if second is not None:
        ids += [*second, vocab.sep_id]
        segments += [1] * (len(second) + 1)
    pad = length - len(ids)
    return (ids + [vocab.pad_id] * pad, [1] * len(segments) + [0] * pad, segments + [0] * pad)


def truncate_pair(first: list[int], second: list[int] | None, budget: int) -> bool:
    """Shortens the longer text one piece at a time until both fit `budget`; True if cut."""
    second = second if second is not None else []
    cut = False
    while len(first) + len(second) > budget:
        (first if len(first) >= len(second) else second).pop()
        cut = True
    return cut


def encode_sentences(examples: list[Example], tokenizer: WordPieceTokenizer, length: int,
                     kind: str, labels: tuple[str, ...] = (),
                     label_range: tuple[float, float] = (0.0, 1.0),
                     with_labels: bool = True) -> Encoded:
    """Single sentences or pairs -> features (see the module docstring)."""
    vocab = tokenizer.vocab
    pairs = len(examples[0].texts) == 2
    firsts = tokenize(tokenizer, [e.texts[0] for e in examples])
    seconds = tokenize(tokenizer, [e.texts[1] for e in examples]) if pairs else None
    rows, truncated = [], 0
    for i in range(len(examples)):
        first, second = firsts[i], seconds[i] if pairs else None
        truncated += truncate_pair(first, second, length - (3 if pairs else 2))
        rows.append(pack(vocab, first, second, length))
    ids, mask, segments = (np.asarray(part, np.int32) for part in zip(*rows))
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": segments}
    if with_labels and kind == "classification":
        index = {label: i for i, label in enumerate(labels)}
        features["label_ids"] = np.asarray([index[e.label] for e in examples], np.int32)
    elif with_labels and kind == "regression":
        low, high = label_range
        features["targets"] = np.asarray([(float(e.label) - low) / (high - low)
                                          for e in examples], np.float32)
    return Encoded(features, truncated)


def tag_windows(piece_counts: list[int], budget: int) -> list[tuple[int, int]]:
    """Word ranges [a, b) of a sentence whose pieces fit `budget`, covering every word: the
    first from word 0, each next one from the first word at least half a window (in pieces)
    after the previous start and at most at its end, so that consecutive windows overlap. A
    word with more pieces than the budget gets a window alone (its first pieces)."""
    offsets = np.concatenate([[0], np.cumsum(piece_counts)])
    windows, a, n = [], 0, len(piece_counts)
    while n:
        b = a
        while b < n and offsets[b + 1] - offsets[a] <= budget:
            b += 1
        b = max(b, a + 1)
        windows.append((a, b))
        if b >= n:
            return windows
        target = offsets[a] + max(1, budget // 2)
        a = next((i for i in range(a + 1, b) if offsets[i] >= target), b)
    return windows


def encode_tagging(examples: list[Example], tokenizer: WordPieceTokenizer, length: int,
                   labels: tuple[str, ...], with_labels: bool = True) -> Encoded:
    """Sentences of words -> features with each word's tag on its first sub-token.

    A sentence longer than max_seq_length becomes several features, overlapping windows of
    whole words (`tag_windows`); training reads every window, evaluation reads each word
    from the window where it has the most context (`tags_from_logits`). Words that yield no
    piece (e.g. control characters only) become [UNK].
    """
    vocab = tokenizer.vocab
    flat = [w for e in examples for w in e.texts]
    pieces = tokenize(tokenizer, flat)
    index = {label: i for i, label in enumerate(labels)}
    rows, windows, word_starts, cursor = [], [], [], 0
    for number, example in enumerate(examples):
        words = [pieces[cursor + w] or [vocab.unk_id] for w in range(len(example.texts))]
        cursor += len(example.texts)
        for first, end in tag_windows([len(w) for w in words], length - 2) or [(0, 0)]:
            tokens, starts, tags = [vocab.cls_id], [], []
            for w in range(first, end):
                starts.append(len(tokens))
                tags.append(index[example.label[w]] if with_labels else 0)
                tokens.extend(words[w][:length - 1 - len(tokens)])
            rows.append((tokens + [vocab.sep_id], starts, tags))
            windows.append((number, first, end))
            word_starts.append(starts)
    ids = np.full((len(rows), length), vocab.pad_id, np.int32)  # [N, L]
    mask, label_ids = np.zeros_like(ids), np.zeros_like(ids)
    weights = np.zeros(ids.shape, np.float32)
    for row, (tokens, starts, tags) in enumerate(rows):
        ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens)] = 1
        label_ids[row, starts] = tags
        weights[row, starts] = 1.0
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}
    if with_labels:
        features.update(label_ids=label_ids, label_weights=weights)
    return Encoded(features, 0, word_starts, windows)


def tags_from_logits(logits: np.ndarray, encoded: Encoded, examples: list[Example],
                     labels: tuple[str, ...]) -> list[list[str]]:
    """[N, L, C] logits of the features -> each example's predicted tag per word, read from
    the window where the word has the most context (words on both sides; the first such)."""
    best = logits.argmax(-1)
    tags = [[labels[0]] * len(e.texts) for e in examples]
    context = [[-1] * len(e.texts) for e in examples]
    for row, (example, first, end) in enumerate(encoded.windows):
        for w, position in zip(range(first, end), encoded.word_starts[row]):
            around = min(w - first, end - 1 - w)
            if around > context[example][w]:
                context[example][w] = around
                tags[example][w] = labels[best[row, position]]
    return tags
