"""BERT's text normalization as TensorFlow string ops, with a map back to the raw text.

The original BERT tokenizer (google-research/bert `BasicTokenizer`; transformers'
`BertTokenizer`) normalizes text before it splits words:
  cleaning      removes NUL, U+FFFD and every control, format and private-use character
                (Unicode category C) except tab, newline and carriage return;
  uncased only  canonical decomposition (NFD), nonspacing marks (Mn) dropped: accents go,
                then each character lower-cased.
tensorflow-text's FastBertTokenizer departs from it in two ways, so the tokenizer runs it with
its own normalization off (it still maps whitespace and splits punctuation and CJK as BERT)
after `normalize` below:
  - with lower-casing it applies NFKC case folding, which also folds *compatibility*
    characters: the full-width "，" "：" "１" "Ａ" of Chinese text became "," ":" "1" "a",
    ids the Chinese vocabularies hold apart, and "ﬁ" became "fi", "ß" "ss";
  - it splits words at control characters instead of removing them.

Where BERT's implementations disagree with each other, our rules (tested; the reference is
transformers' `BertTokenizer`, the Rust `tokenizers` one, and on real English and Chinese text
the ids are identical, both casings):
  - a capital sigma is lower-cased to "σ" everywhere (per character, as the Rust tokenizer and
    tensorflow-text's case folding; Python's str.lower, used by the original BERT code and
    transformers' Python tokenizer, writes "ς" at a word's end);
  - CJK ideographs are BERT's ranges, as the original: the Rust tokenizer's table misses
    U+2B820-U+2B91F (the start of CJK Extension E), which it keeps inside words;
  - no NFC composition (transformers' Python tokenizer composes text first; the original does
    not): cased, a CJK compatibility ideograph such as U+F900 stays itself;
  - unassigned code points are kept (as the Rust tokenizer; Python removes them);
  - characters are classified by the Unicode tables of TensorFlow's ICU and RE2, so a few
    hundred characters added in recent Unicode versions (new punctuation, marks and capitals;
    none of them CJK) can differ from one reference or the other.
"""

from __future__ import annotations

import tensorflow as tf

# Category C except tab, newline, carriage return (BERT's `_is_control`), and U+FFFD.
_CONTROL = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}"
# Printable ASCII and the whitespace BERT keeps: text that normalizes to itself (lower-cased).
_PLAIN_ASCII = r"[\t\n\r\x20-\x7E]*"


def normalize(texts: tf.Tensor, lower_case: bool) -> tf.Tensor:
    """[...] UTF-8 strings -> the same shape, cleaned (and for uncased models: NFD, accents
    dropped, lower-cased) as BERT does before splitting words. Bytes that are not UTF-8 count
    as U+FFFD, so they go as they do when the data builder reads a file."""
    # Most English lines are plain ASCII, for which all of it is ASCII lower-casing or nothing:
    # the full normalization (five passes over the text) runs on the other rows only.
    texts = tf.convert_to_tensor(texts, tf.string)
    flat = tf.reshape(texts, [-1])
    rows = tf.where(~tf.strings.regex_full_match(flat, _PLAIN_ASCII))  # [R, 1]
    other = _normalize(tf.gather_nd(flat, rows), lower_case)
    if lower_case:
        flat = tf.strings.lower(flat)
    flat = tf.tensor_scatter_nd_update(flat, rows, other)
    return tf.reshape(flat, tf.shape(texts))


def _normalize(texts: tf.Tensor, lower_case: bool) -> tf.Tensor:
    """[R] strings -> cleaned; for uncased models also NFD, nonspacing marks dropped and
    lower-cased."""
    import tensorflow_text as tf_text

    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    if not lower_case:
        return tf.strings.regex_replace(texts, f"[{_CONTROL}]", "")
    # Per-character lower-casing: ICU writes a final sigma for "Σ" at a word's end.
    texts = tf.strings.regex_replace(texts, "Σ", "σ")
    texts = tf_text.normalize_utf8(texts, "NFD")  # decomposes no control character
    texts = tf.strings.regex_replace(texts, rf"[{_CONTROL}\p{{Mn}}]", "")
    return tf.strings.lower(texts, encoding="utf-8")


def normalize_with_offsets(texts: tf.Tensor, lower_case: bool
                           ) -> tuple[tf.Tensor, tf.RaggedTensor, tf.RaggedTensor,
                                      tf.RaggedTensor]:
    """[B] strings -> (normalized [B], each raw character's byte start and end [B, (C)], and
    the byte end of its normalized form in the normalized text [B, (C)]).

    Normalizes character by character (identical to `normalize` on the whole text, tested),
    so that `raw_offsets` can take a byte range of the normalized text back to the raw one.
    """
    chars, starts = tf.strings.unicode_split_with_offsets(texts, "UTF-8")  # [B, (C)]
    starts = tf.cast(starts, tf.int64)
    # raw end of each character: the next one's start (a byte that is not UTF-8 is a U+FFFD
    # of its own length in the raw text)
    lengths = tf.cast(tf.strings.length(texts), tf.int64)[:, None]  # [B, 1]
    ends = tf.concat([starts[:, 1:], tf.RaggedTensor.from_tensor(lengths)], axis=1)
    normalized = chars.with_flat_values(normalize(chars.flat_values, lower_case))
    widths = tf.cast(tf.strings.length(normalized), tf.int64)  # [B, (C)], 0 if removed
    norm_ends = tf.cumsum(widths.to_tensor(), axis=1)  # [B, C]
    norm_ends = tf.RaggedTensor.from_tensor(norm_ends, lengths=widths.row_lengths())
    return tf.strings.reduce_join(normalized, axis=1), starts, ends, norm_ends


def raw_offsets(starts: tf.RaggedTensor, ends: tf.RaggedTensor, char_starts: tf.RaggedTensor,
                char_ends: tf.RaggedTensor, norm_ends: tf.RaggedTensor
                ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Byte ranges [B, (P)] in the normalized text -> byte ranges in the raw text: from the
    start of the raw character whose normalized form holds `start` to the end of the one that
    holds `end - 1` (`normalize_with_offsets` gives the character tables)."""
    big = tf.int64.max
    table = norm_ends.to_tensor(big)  # [B, C], padded past every offset

    def char_of(byte: tf.RaggedTensor) -> tf.RaggedTensor:
        # characters whose normalized form ends at or before `byte`: the index of the one
        # holding it (removed characters have empty forms and are skipped)
        dense = byte.to_tensor(0)
        index = tf.searchsorted(table, dense, side="right")
        return tf.RaggedTensor.from_tensor(index, lengths=byte.row_lengths())

    first = char_of(starts)
    last = char_of(ends - 1)
    return (tf.gather(char_starts, first, batch_dims=1),
            tf.gather(char_ends, last, batch_dims=1))
