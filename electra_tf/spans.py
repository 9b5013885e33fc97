"""Entity spans from per-word tags, in the graph: the chunks that conlleval (and
`metrics.chunks`, fine-tuning's span F1) reads from BIO / IOB1 / IOBES tags, for the tagging
export, which serves them with character offsets into the raw text.

The rules, word by word (a chunk is open before word i exactly when word i-1 is tagged, i.e.
its prefix is not O; its type is then word i-1's):
  - the open chunk ends before word i when word i is O, B or S, has another type, or word i-1
    was E or S;
  - word i begins a chunk when it is tagged and is B or S, or nothing is open at that point
    (an I or E without a chunk to continue begins one, as conlleval reads IOB1).
"""

from __future__ import annotations

import tensorflow as tf


def split_tags(tags: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Tag strings (any shape) -> (prefix upper-cased: "O", "B", "I", "E", "S"; type).
    "O" and tags without "-" are ("O", "")."""
    tagged = tf.strings.regex_full_match(tags, "[^-]*-.*") & (tags != "O")
    prefix = tf.strings.upper(tf.strings.regex_replace(tags, "-.*", ""))
    kind = tf.strings.regex_replace(tags, "^[^-]*-", "")
    return tf.where(tagged, prefix, "O"), tf.where(tagged, kind, "")


def chunk_bounds(tags: tf.RaggedTensor
                 ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
    """tags [B, (W)] strings -> (first word, last word inclusive, type) [B, (N)] of every chunk,
    in order."""
    prefix, kind = split_tags(tags.flat_values)  # [T]
    rows = tf.cast(tags.value_rowids(), tf.int32)  # [T]
    word = tf.range(tf.size(rows)) - tf.gather(tf.cast(tags.row_starts(), tf.int32), rows)
    lengths = tf.gather(tf.cast(tags.row_lengths(), tf.int32), rows)
    first, last = word == 0, word == lengths - 1  # [T]
    prev_prefix = tf.where(first, "O", tf.roll(prefix, 1, 0))
    prev_kind = tf.where(first, "", tf.roll(kind, 1, 0))
    is_o = prefix == "O"
    opened = prev_prefix != "O"
    ends_before = opened & (is_o | (prefix == "B") | (prefix == "S") | (kind != prev_kind)
                            | (prev_prefix == "E") | (prev_prefix == "S"))
    begins = ~is_o & ((prefix == "B") | (prefix == "S") | ~opened | ends_before)
    ends_here = tf.where(last, ~is_o, tf.roll(ends_before, -1, 0))  # the chunk ends at word i

    def pick(values: tf.Tensor, where: tf.Tensor) -> tf.RaggedTensor:  # tags' row partition
        return tf.RaggedTensor.from_value_rowids(tf.boolean_mask(values, where),
                                                 tf.boolean_mask(tags.value_rowids(), where),
                                                 tags.nrows())

    return pick(word, begins), pick(word, ends_here), pick(kind, begins)
