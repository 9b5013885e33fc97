"""Examples -> fixed-length model features for sentence(-pair) and tagging tasks.

Features (NumPy, [N, L] int32 unless noted; the model's batch keys):
  input_ids, input_mask, segment_ids: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, segment 1
    for `B [SEP]`, padded with [PAD]'s id;
  classification: label_ids [N] int32;  regression: targets [N] float32 (scaled to [0, 1]);
  tagging: label_ids [N, L] and label_weights [N, L] float32: the word's tag on its first
    sub-token (weight 1), weight 0 elsewhere.
Texts longer than max_seq_length are truncated (longest text first, as BERT/ELECTRA) and
counted: the counts come back in `Encoded.truncated` and are logged by the caller.
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
    truncated: int = 0  # examples (tagging: words) that did not fit
    word_starts: list[list[int]] = dataclasses.field(default_factory=list)  # tagging only

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


def encode_tagging(examples: list[Example], tokenizer: WordPieceTokenizer, length: int,
                   labels: tuple[str, ...], with_labels: bool = True) -> Encoded:
    """Sentences of words -> features with each word's tag on its first sub-token.

    Words that yield no piece (e.g. control characters only) become [UNK]. Words past
    max_seq_length are dropped from the input and counted in `truncated`; evaluation
    predicts "O" (or the first label) for them, so the scores stay over all gold chunks.
    """
    vocab = tokenizer.vocab
    flat = [w for e in examples for w in e.texts]
    pieces = tokenize(tokenizer, flat)
    index = {label: i for i, label in enumerate(labels)}
    ids = np.full((len(examples), length), vocab.pad_id, np.int32)
    mask = np.zeros_like(ids)
    label_ids = np.zeros_like(ids)
    weights = np.zeros(ids.shape, np.float32)
    word_starts, truncated, cursor = [], 0, 0
    for row, example in enumerate(examples):
        tokens, starts = [vocab.cls_id], []
        for w in range(len(example.texts)):
            word = pieces[cursor + w] or [vocab.unk_id]
            if len(tokens) + len(word) > length - 1:
                truncated += len(example.texts) - w
                break
            starts.append(len(tokens))
            if with_labels:
                label_ids[row, len(tokens)] = index[example.label[w]]
                weights[row, len(tokens)] = 1.0
            tokens.extend(word)
        cursor += len(example.texts)
        tokens.append(vocab.sep_id)
        ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens)] = 1
        word_starts.append(starts)
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}
    if with_labels:
        features.update(label_ids=label_ids, label_weights=weights)
    return Encoded(features, truncated, word_starts)


def tags_from_logits(logits: np.ndarray, encoded: Encoded, examples: list[Example],
                     labels: tuple[str, ...]) -> list[list[str]]:
    """[N, L, C] logits -> each example's predicted tag per word (truncated words: "O")."""
    fallback = "O" if "O" in labels else labels[0]
    best = logits.argmax(-1)
    out = []
    for row, example in enumerate(examples):
        starts = encoded.word_starts[row]
        tags = [labels[best[row, position]] for position in starts]
        out.append(tags + [fallback] * (len(example.texts) - len(starts)))
    return out
