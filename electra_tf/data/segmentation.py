"""Word boundaries for whole-word masking where tokens are not words: Chinese, one token a
character. A segmenter (jieba: the most used Chinese word segmenter, MIT license, pure Python,
installed with the `zh` extra) cuts each line into words; a token continues a word when it is
not the word's first token. The shards then carry `word_continues` (int64 [max_seq_length], 1 =
continues the previous token's word) beside the usual features; `input_ids` are unchanged.

Alignment: each word is tokenized on its own, and the pieces of a line's words must be the
line's own tokens, in order (BERT's tokenizer splits at every CJK character, punctuation mark
and space, which jieba's words never cut across); a line where they differ keeps token-level
boundaries (every token a word) and is counted in dataset_info.json (`unaligned_lines`).
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
                   segmenter: str) -> tuple[np.ndarray, int]:
    """Continuation flags of a chunk's tokens, and the number of lines left unaligned.

    tokenizer: the builder's WordPieceTokenizer; lines: the chunk's lines; ids int32 [tokens]
    and splits int64 [lines + 1]: their tokens (tokenizer.tokenize of `lines`).
    Returns int32 [tokens] (1 = the token continues the previous one's word).
    """
    if segmenter not in SEGMENTERS or not segmenter:
        raise ValueError(f"word segmenter {segmenter!r}: expected one of {SEGMENTERS[1:]}")
    jieba = _jieba()
    words = [list(jieba.cut(line)) for line in lines]  # [lines, (words)]
    flat = [w for line_words in words for w in line_words]
    if not flat:
        return np.zeros(len(ids), np.int32), 0
    ragged = tokenizer.tokenize(tf.constant(flat))  # [words, (pieces)]
    pieces = ragged.flat_values.numpy().astype(np.int32)
    word_splits = ragged.row_splits.numpy()  # [words + 1]
    # a word's first piece starts a word; its other pieces continue it
    continues = np.ones(len(pieces), np.int32)
    starts = word_splits[:-1][np.diff(word_splits) > 0]
    continues[starts] = 0
    line_words = np.cumsum([0] + [len(w) for w in words])  # [lines + 1] into words
    line_pieces = word_splits[line_words]  # [lines + 1] into pieces
    if np.array_equal(pieces, ids) and np.array_equal(line_pieces, splits):
        return continues, 0  # every line aligned (the usual case): no loop over lines
    out = np.zeros(len(ids), np.int32)
    unaligned = 0
    for line in range(len(lines)):
        mine = ids[splits[line]:splits[line + 1]]
        theirs = pieces[line_pieces[line]:line_pieces[line + 1]]
        if len(mine) == len(theirs) and np.array_equal(mine, theirs):
            out[splits[line]:splits[line + 1]] = continues[line_pieces[line]:line_pieces[line + 1]]
        else:
            unaligned += 1
    return out, unaligned


def with_flag(ids: np.ndarray, continues: np.ndarray) -> np.ndarray:
    """int32 ids carrying their continuation flag in bit FLAG_BIT (for packing)."""
    return (ids | (continues.astype(np.int32) << FLAG_BIT)).astype(np.int32)


def split_flag(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed rows of `with_flag` ids -> (input_ids, word_continues), both int32 [E, L]."""
    return rows & ((1 << FLAG_BIT) - 1), (rows >> FLAG_BIT) & 1
