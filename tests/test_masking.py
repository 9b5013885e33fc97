"""Dynamic masking: the official statistics, fixed shapes, and identical results everywhere."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import CLS, MASK, SEP, packed_batch

from electra_tf.data import masking

L, N = 128, 19  # N = int((0.15 + 0.005) * 128)
KW = dict(mask_prob=0.15, num_predictions=N, mask_id=MASK, special_ids=(CLS, SEP, MASK))


@pytest.fixture(scope="module")
def many():
    """10,240 sequences of mixed lengths (3..128), some containing stray [MASK] tokens."""
    batches = []
    for i in range(10):
        raw = packed_batch(1024, L, vocab_size=1000, seed=i)
        ids = raw["input_ids"].numpy()
        ids[:, 5][ids[:, 5] > 900] = MASK  # a literal [MASK] in the text is never chosen
        raw["input_ids"] = tf.constant(ids)
        batches.append((raw, masking.mask_batch(raw, tf.constant([7, i]), **KW)))
    return batches


def test_shapes_and_dtypes(many):
    raw, out = many[0]
    for key in ("masked_lm_positions", "masked_lm_ids"):
        assert out[key].shape == (1024, N) and out[key].dtype == tf.int32
    assert out["masked_lm_weights"].shape == (1024, N)
    assert out["masked_lm_weights"].dtype == tf.float32
    assert out["input_ids"].shape == raw["input_ids"].shape
    assert out["segment_ids"] is raw["segment_ids"]


def test_count_matches_official_formula(many):
    for raw, out in many:
        lengths = raw["input_mask"].numpy().sum(1)
        expected = np.maximum(1, np.minimum(N, np.round(lengths * 0.15))).astype(int)
        candidates = lengths - 2 - (raw["input_ids"].numpy() == MASK).sum(1) - (
            (raw["segment_ids"].numpy().sum(1) > 0).astype(int))  # the middle [SEP]
        expected = np.minimum(expected, candidates)
        np.testing.assert_array_equal(out["masked_lm_weights"].numpy().sum(1), expected)


def test_positions_distinct_valid_and_never_special(many):
    for raw, out in many:
        ids, mask = raw["input_ids"].numpy(), raw["input_mask"].numpy()
        pos, w = out["masked_lm_positions"].numpy(), out["masked_lm_weights"].numpy()
        for b in range(len(ids)):
            live = pos[b][w[b] > 0]
            assert len(set(live)) == len(live)
            assert mask[b, live].all()  # never padding
            assert not np.isin(ids[b, live], (CLS, SEP, MASK)).any()
            assert (pos[b][w[b] == 0] == 0).all()  # unused slots: position 0, weight 0
        np.testing.assert_array_equal(out["masked_lm_ids"].numpy(),
                                      np.take_along_axis(ids, pos, 1) * (w > 0))


def test_85_15_split_and_no_random_tokens(many):
    shown = kept = 0
    for raw, out in many:
        ids, new = raw["input_ids"].numpy(), out["input_ids"].numpy()
        pos, w = out["masked_lm_positions"].numpy(), out["masked_lm_weights"].numpy() > 0
        at = np.take_along_axis(new, pos, 1)[w]
        orig = np.take_along_axis(ids, pos, 1)[w]
        shown += (at == MASK).sum()
        kept += (at == orig).sum()
        assert ((at == MASK) | (at == orig)).all()  # no random replacement
        changed = new != ids
        assert changed.sum() == (at == MASK).sum()  # nothing else changed
    assert abs(shown / (shown + kept) - 0.85) < 0.01


def test_uniform_over_candidates():
    """Every candidate position is chosen about equally often (no positional bias)."""
    raw = packed_batch(4096, L, vocab_size=1000, seed=99, min_len=L)  # all full, [SEP] at 64
    out = masking.mask_batch(raw, tf.constant([1, 1]), **KW)
    pos = out["masked_lm_positions"].numpy()[out["masked_lm_weights"].numpy() > 0]
    hist = np.bincount(pos, minlength=L)
    assert hist[[0, L // 2, L - 1]].sum() == 0  # [CLS] and both [SEP]
    counts = np.delete(hist, [0, L // 2, L - 1])  # 125 candidates, ~622 hits each
    assert counts.min() > 0.85 * counts.mean() and counts.max() < 1.15 * counts.mean()


def test_same_seed_same_masks_eager_tfdata_xla():
    raw = packed_batch(16, 64, vocab_size=500, seed=3)
    kw = dict(KW, num_predictions=10)
    seed = tf.constant([5, 11])
    eager = masking.mask_batch(raw, seed, **kw)
    xla = tf.function(lambda r, s: masking.mask_batch(r, s, **kw), jit_compile=True)(raw, seed)
    ds = tf.data.Dataset.from_tensors(raw).map(lambda r: masking.mask_batch(r, seed, **kw))
    in_data = next(iter(ds))
    other = masking.mask_batch(raw, tf.constant([5, 12]), **kw)
    for key in eager:
        np.testing.assert_array_equal(eager[key].numpy(), xla[key].numpy(), err_msg=key)
        np.testing.assert_array_equal(eager[key].numpy(), in_data[key].numpy(), err_msg=key)
    assert not np.array_equal(eager["masked_lm_positions"], other["masked_lm_positions"])


def test_sequence_without_candidates_gets_no_live_slot():
    raw = {"input_ids": tf.constant([[CLS, SEP, 0, 0]]), "input_mask": tf.constant([[1, 1, 0, 0]]),
           "segment_ids": tf.zeros((1, 4), tf.int32)}
    out = masking.mask_batch(raw, tf.constant([0, 0]), **dict(KW, num_predictions=2))
    assert out["masked_lm_weights"].numpy().sum() == 0
    np.testing.assert_array_equal(out["input_ids"], raw["input_ids"])


def test_bert_80_10_10_split_for_the_masked_lm_baseline():
    """objective "mlm": 80% [MASK], 10% a uniformly random id, 10% unchanged; same selection."""
    raw = packed_batch(4096, L, vocab_size=1000, seed=5)
    kw = dict(KW, mask_token_rate=0.8, random_token_rate=0.1, vocab_size=1000)
    out = masking.mask_batch(raw, tf.constant([3, 4]), **kw)
    electra = masking.mask_batch(raw, tf.constant([3, 4]), **KW)
    for key in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
        np.testing.assert_array_equal(out[key].numpy(), electra[key].numpy())
    ids, new = raw["input_ids"].numpy(), out["input_ids"].numpy()
    pos, w = out["masked_lm_positions"].numpy(), out["masked_lm_weights"].numpy() > 0
    at, orig = np.take_along_axis(new, pos, 1)[w], np.take_along_axis(ids, pos, 1)[w]
    shares = [np.mean(at == MASK), np.mean((at != MASK) & (at != orig)), np.mean(at == orig)]
    # a random id equals the original 1 time in 1000: within the 1-point tolerance
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.01)
    random_ids = at[(at != MASK) & (at != orig)]
    assert random_ids.min() >= 0 and random_ids.max() < 1000
    assert len(np.unique(random_ids)) > 900  # spread over the vocabulary, not one id
    chosen = np.zeros_like(new, bool)
    np.put_along_axis(chosen, pos, w, 1)  # unused slots point at [CLS], which is never chosen
    assert not ((new != ids) & ~chosen).any()  # nothing outside the chosen positions changed


def test_random_tokens_need_the_vocabulary_size():
    raw = packed_batch(4, L, vocab_size=1000, seed=1)
    with pytest.raises(ValueError, match="random_token_rate > 0 needs vocab_size"):
        masking.mask_batch(raw, tf.constant([1, 1]), **KW, mask_token_rate=0.8,
                           random_token_rate=0.1)


def _words(continues, candidate):
    """Reference word spans of one row: lists of positions, from explicit continuation flags."""
    words, current = [], []
    for i, (c, cand) in enumerate(zip(continues, candidate)):
        if cand and c and current and candidate[i - 1]:
            current.append(i)
            continue
        if current:
            words.append(current)
        current = [i] if cand else []
    if current:
        words.append(current)
    return words


@pytest.mark.parametrize("source", ["segmenter", "wordpiece"])
def test_whole_word_masking_masks_every_token_of_a_word_or_none(source):
    raw = packed_batch(512, L, vocab_size=1000, seed=3)
    ids = raw["input_ids"].numpy()
    rng = np.random.default_rng(0)
    batch = dict(raw)
    if source == "segmenter":  # the builder's flags: words of 1-4 characters
        continues = (rng.random(ids.shape) < 0.45).astype(np.int32)
        batch["word_continues"] = tf.constant(continues)
        kw = dict(KW, whole_word_masking=True)
    else:  # "##" pieces: ids 600-999 stand for continuations
        continues = ((ids >= 600) & (ids < 1000)).astype(np.int32)
        kw = dict(KW, whole_word_masking=True, continuation_ids=tuple(range(600, 1000)))
    out = masking.mask_batch(batch, tf.constant([5, 1]), **kw)
    assert "word_continues" not in out
    pos, w = out["masked_lm_positions"].numpy(), out["masked_lm_weights"].numpy()
    mask = raw["input_mask"].numpy()
    candidate = mask.astype(bool) & ~np.isin(ids, (CLS, SEP, MASK))
    expected = np.maximum(1, np.minimum(N, np.round(mask.sum(1) * 0.15)))
    masked_share, words_seen = [], 0
    for b in range(len(ids)):
        chosen = set(pos[b][w[b] > 0].tolist())
        assert len(chosen) == int(w[b].sum()) <= expected[b]
        for word in _words(continues[b], candidate[b]):
            hit = chosen.intersection(word)
            assert not hit or hit == set(word), (b, word, sorted(chosen))
            words_seen += len(hit) > 0 and len(word) > 1
        masked_share.append(len(chosen) / expected[b])
    # multi-token words do get masked, and the budget is mostly used (a word that would
    # overflow it is left out, so the mean stays a little under 1)
    assert words_seen > 100
    assert 0.8 < np.mean(masked_share) <= 1.0
    # the same flags through the table and the feature give the same masks; off = per token
    plain = masking.mask_batch(raw, tf.constant([5, 1]), **KW)
    assert not np.array_equal(plain["masked_lm_positions"].numpy(), pos)


def test_whole_word_masking_without_any_continuation_is_token_masking():
    raw = packed_batch(64, L, vocab_size=1000, seed=4)
    plain = masking.mask_batch(raw, tf.constant([9, 2]), **KW)
    batch = dict(raw, word_continues=tf.zeros_like(raw["input_ids"]))
    words = masking.mask_batch(batch, tf.constant([9, 2]), **KW, whole_word_masking=True)
    for key in ("masked_lm_positions", "masked_lm_weights", "input_ids"):
        np.testing.assert_array_equal(plain[key].numpy(), words[key].numpy())
