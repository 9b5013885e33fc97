"""Word boundaries for whole-word masking where tokens are not words: Chinese, one token a
character. A segmenter (jieba: the most used Chinese word segmenter, MIT license, pure Python,
installed with the `zh` extra) cuts each line into words; a token continues a word when it does
not start where one of the segmenter's words starts. The shards then carry `word_continues`
(int64 [max_seq_length], 1 = continues the previous token's word) beside the usual features;
`input_ids` are unchanged.

Alignment is by position in the raw line (the tokenizer's byte offsets against the byte offsets
of the segmenter's words), so it holds where the two cut differently: jieba cuts full-width
numbers ("１９９７") into characters, BERT's tokenizer keeps them one token, which then starts a
word; a WordPiece continuation ("##...") never starts one.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import tensorflow as tf

SEGMENTERS = ("", "jieba")
# Packing copies token ids verbatim, so a token's flag rides through it in this bit of its id
# (vocabularies are far below 2^30 tokens) and is taken off after (`split_flag`).
FLAG_BIT = 30
_LOCK = threading.Lock()


def _jieba():
    """jieba, imported and its dictionary loaded once per process (quietly)."""
    with _LOCK:
        try:
            import jieba
        except ImportError:
            raise SystemExit("--word_segmenter=jieba needs jieba: pip install 'electra-tf[zh]' "
                             "(or pip install jieba)") from None
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
    return jieba


def word_continues(tokenizer, lines: list[str], ids: np.ndarray, splits: np.ndarray,
                   segmenter: str) -> np.ndarray:
    """Continuation flags of a chunk's tokens.

    tokenizer: the builder's WordPieceTokenizer; lines: the chunk's lines; ids int32 [tokens]
    and splits int64 [lines + 1]: their tokens (tokenizer.tokenize of `lines`).
    Returns int32 [tokens] (1 = the token continues the previous one's word).
    """
    if segmenter not in SEGMENTERS or not segmenter:
        raise ValueError(f"word segmenter {segmenter!r}: expected one of {SEGMENTERS[1:]}")
    if not len(ids):
        return np.zeros(0, np.int32)
    jieba = _jieba()
    encoded = [line.encode("utf-8") for line in lines]
    line_base = np.cumsum([0] + [len(b) + 1 for b in encoded])  # [lines + 1]: bytes before
    word_starts = []  # byte offsets in the chunk where a word starts
    for base, line in zip(line_base, lines):
        offset = int(base)
        for word in jieba.cut(line):
            word_starts.append(offset)
            offset += len(word.encode("utf-8"))
    tokens, starts, _ = tokenizer.tokenize_with_offsets(tf.constant(lines))
    if not np.array_equal(tokens.flat_values.numpy(), ids):
        raise ValueError("tokenize_with_offsets disagrees with tokenize on this chunk")
    line_of = np.repeat(np.arange(len(lines)), np.diff(splits))  # [tokens]
    token_starts = line_base[line_of] + starts.flat_values.numpy()  # [tokens]
    return (~np.isin(token_starts, np.asarray(word_starts, np.int64))).astype(np.int32)


def with_flag(ids: np.ndarray, continues: np.ndarray) -> np.ndarray:
    """int32 ids carrying their continuation flag in bit FLAG_BIT (for packing)."""
    return (ids | (continues.astype(np.int32) << FLAG_BIT)).astype(np.int32)


def split_flag(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed rows of `with_flag` ids -> (input_ids, word_continues), both int32 [E, L]."""
    return rows & ((1 << FLAG_BIT) - 1), (rows >> FLAG_BIT) & 1
