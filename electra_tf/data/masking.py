"""Dynamic masking for replaced token detection: pure TF, fixed shapes, stateless seeds.

The official procedure (electra/pretrain/pretrain_helpers.py `mask`):
  candidates = tokens with input_mask = 1 except [CLS], [SEP] and [MASK];
  per sequence num = max(1, min(N, round(sum(input_mask) * mask_prob)));
  positions drawn uniformly from the candidates; 85% of them become [MASK], 15% stay unchanged;
  no random-token replacement; unused slots have position 0 and weight 0.
The BERT baseline (`objective="mlm"`) uses the same selection with 80% [MASK], 10% a uniformly
random token id and 10% unchanged (`mask_token_rate=0.8, random_token_rate=0.1`).
One deliberate difference: the official code draws positions *with* replacement and then
de-duplicates when scattering, so about 7% of its slots at L=128 repeat a position (the same
token then counts twice in the MLM loss, and fewer distinct tokens are masked than the formula
says). We draw *without* replacement (uniform random keys + top-k), so exactly `num` distinct
positions are masked, which is what the formula intends.

Whole-word masking (`whole_word_masking`, off by default as in the authors' code): the unit
drawn is a word, and all its tokens are masked together. A token continues the word before it
when it is a WordPiece continuation ("##...", BERT's whole-word masking) or when the shards mark
it so (`word_continues`, written by the data builder's `--word_segmenter=jieba` for Chinese,
where every character is a token). Words are taken in a random order while they fit the same
per-sequence budget; the word that would overflow it, and every later one, is left out, so a
sequence holds up to one word's tokens fewer than `num` (measured in tests/test_masking.py).

The same seed gives the same masks eagerly, inside tf.data and under XLA (`electra_tf.rng`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from electra_tf import rng

SPECIAL_TOKENS_NOT_MASKED = ("[CLS]", "[SEP]", "[MASK]")


def masked_lm_count(input_mask: tf.Tensor, mask_prob: float, num_predictions: int) -> tf.Tensor:
    """[B, L] input_mask -> [B] int32 number of positions to mask (the official formula)."""
    length = tf.reduce_sum(tf.cast(input_mask, tf.float32), axis=-1)
    count = tf.cast(tf.round(length * mask_prob), tf.int32)
    return tf.maximum(1, tf.minimum(num_predictions, count))


def mask_batch(batch: Mapping[str, tf.Tensor], seed: tf.Tensor, *, mask_prob: float,
               num_predictions: int, mask_id: int, special_ids: tuple[int, ...],
               mask_token_rate: float = 0.85, random_token_rate: float = 0.0,
               vocab_size: int = 0, whole_word_masking: bool = False,
               continuation_ids: tuple[int, ...] = ()) -> dict[str, tf.Tensor]:
    """Chooses and masks positions in a batch of packed sequences.

    Args:
      batch: `input_ids`, `input_mask`, `segment_ids`, each [B, L] int32 (fixed L).
      seed: [2] int32 stateless seed; derive it from (run seed, batch index) for reproducibility.
      mask_prob: share of each sequence's tokens to mask.
      num_predictions: N, fixed slots per sequence (max_predictions_per_seq).
      mask_id: id of [MASK] in the vocabulary.
      special_ids: ids never chosen (ids of [CLS], [SEP], [MASK]; padding is excluded by
        input_mask). Look them up from the vocabulary (`tokenization.special_ids`).
      mask_token_rate: share of chosen positions replaced by [MASK].
      random_token_rate: share of chosen positions replaced by a token id drawn uniformly from
        [0, vocab_size) (BERT's 10%); the rest keep their token.
      vocab_size: V, needed when random_token_rate > 0.
      whole_word_masking: draw words, not tokens (see the module docstring).
      continuation_ids: ids of the vocabulary's "##" pieces (whole-word masking); the batch may
        also hold `word_continues` [B, L] (1 = this token continues the previous one's word).
    Returns:
      The batch with `input_ids` masked and `masked_lm_positions`, `masked_lm_ids` [B, N] int32,
      `masked_lm_weights` [B, N] float32 added; other keys but `word_continues` are passed
      through.
    """
    input_ids = tf.cast(batch["input_ids"], tf.int32)
    input_mask = tf.cast(batch["input_mask"], tf.int32)
    length = input_ids.shape[1] or tf.shape(input_ids)[1]
    position_seed, keep_seed, token_seed = rng.split(rng.stream(seed, "masking"), 3)

    candidate = tf.cast(input_mask, tf.bool)  # [B, L]
    for token_id in special_ids:
        candidate &= tf.not_equal(input_ids, token_id)

    # Uniform sampling without replacement: random keys on candidates, -1 elsewhere, top-N.
    keys = rng.uniform(tf.shape(input_ids), position_seed)
    if whole_word_masking:  # every token takes its word's key: a word's tokens sort together
        word = word_index(input_ids, candidate, batch.get("word_continues"), continuation_ids)
        keys = tf.gather(keys, word, batch_dims=1)  # [B, L]
    keys = tf.where(candidate, keys, -1.0)  # [B, L]
    top_keys, positions = tf.math.top_k(keys, k=num_predictions, sorted=True)  # [B, N]

    count = masked_lm_count(input_mask, mask_prob, num_predictions)  # [B]
    live = tf.sequence_mask(count, num_predictions) & (top_keys >= 0.0)  # [B, N]
    if whole_word_masking:
        live &= _whole_words(top_keys, word, positions, keys, count)
    positions = tf.where(live, positions, 0)
    weights = tf.cast(live, tf.float32)
    masked_lm_ids = tf.gather(input_ids, positions, batch_dims=1) * tf.cast(live, tf.int32)

    # ELECTRA: 85% of the chosen positions show [MASK], 15% keep their token. BERT: 80% [MASK],
    # 10% a random id, 10% unchanged. One uniform draw per slot decides which.
    draw = rng.uniform(tf.shape(positions), keep_seed)  # [B, N]
    shown = tf.fill(tf.shape(positions), tf.cast(mask_id, tf.int32))  # [B, N]
    changed = live & (draw < mask_token_rate + random_token_rate)
    if random_token_rate > 0:
        if vocab_size < 1:
            raise ValueError("mask_batch: random_token_rate > 0 needs vocab_size")
        random_ids = tf.cast(rng.uniform(tf.shape(positions), token_seed) * vocab_size, tf.int32)
        shown = tf.where(draw < mask_token_rate, shown, tf.minimum(random_ids, vocab_size - 1))
    onehot = tf.one_hot(positions, length, dtype=tf.int32) * tf.cast(changed, tf.int32)[
        :, :, tf.newaxis]  # [B, N, L]
    hit = tf.reduce_max(onehot, axis=1) > 0  # [B, L]
    placed = tf.reduce_max(onehot * shown[:, :, tf.newaxis], axis=1)  # [B, L]
    masked_ids = tf.where(hit, placed, input_ids)

    out = {k: v for k, v in batch.items() if k != "word_continues"}
    out.update(input_ids=masked_ids, masked_lm_positions=positions, masked_lm_ids=masked_lm_ids,
               masked_lm_weights=weights)
    return out


def word_index(input_ids: tf.Tensor, candidate: tf.Tensor, word_continues: tf.Tensor | None,
               continuation_ids: tuple[int, ...]) -> tf.Tensor:
    """[B, L] int32: the index of each token's word within its row (0, 1, ...).

    A token continues the previous token's word when it is a "##" piece or `word_continues`
    says so, and both it and the previous token are candidates (a word never reaches across
    [CLS], [SEP] or padding: a row cut inside a word starts a word of its own)."""
    continues = tf.zeros_like(candidate)  # [B, L] bool
    if continuation_ids:  # a [max id + 2] table, ids beyond it read its last entry (False)
        table = np.zeros(max(continuation_ids) + 2, bool)
        table[list(continuation_ids)] = True
        continues = tf.gather(tf.constant(table), tf.minimum(input_ids, len(table) - 1))
    if word_continues is not None:
        continues |= tf.cast(word_continues, tf.bool)
    previous = tf.pad(candidate[:, :-1], [[0, 0], [1, 0]])  # [B, L]: the token before is one
    continues &= candidate & previous
    return tf.cumsum(1 - tf.cast(continues, tf.int32), axis=1) - 1


def _whole_words(top_keys: tf.Tensor, word: tf.Tensor, positions: tf.Tensor, keys: tf.Tensor,
                 count: tf.Tensor) -> tf.Tensor:
    """[B, N] bool: the slots of top-N whose whole word lies within the first `count` slots.

    Slots come sorted by key and a word's tokens share one key, so each word is a run of
    slots; it is kept when the run ends within the budget and is the whole word (not cut by N).
    """
    same = top_keys[:, :, tf.newaxis] == top_keys[:, tf.newaxis, :]  # [B, N, N]
    run_end = tf.reduce_sum(tf.cast(top_keys[:, tf.newaxis, :] >= top_keys[:, :, tf.newaxis],
                                    tf.int32), axis=-1)  # [B, N]: slots up to the run's end
    in_top = tf.reduce_sum(tf.cast(same, tf.int32), axis=-1)  # [B, N]: the word's slots
    slot_word = tf.gather(word, positions, batch_dims=1)  # [B, N]
    length = tf.reduce_sum(tf.cast(  # [B, N]: the word's tokens in the row (candidates)
        (word[:, tf.newaxis, :] == slot_word[:, :, tf.newaxis])
        & (keys[:, tf.newaxis, :] >= 0.0), tf.int32), axis=-1)
    return (run_end <= count[:, tf.newaxis]) & (in_top == length)


def batch_seed(base_seed: int | tf.Tensor, batch_index: tf.Tensor) -> tf.Tensor:
    """A [2] int32 stateless seed for one batch, from the run seed and the batch counter."""
    return tf.stack([tf.cast(base_seed, tf.int32), tf.cast(batch_index, tf.int32)])
