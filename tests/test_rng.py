"""Batch-position-aware stateless random numbers: the same numbers per example however a
global batch is split into replicas and micro-batches, eagerly and under XLA."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import rng

SEED = tf.constant([7, 9])


def test_split_batches_draw_the_numbers_of_the_whole_batch():
    whole = rng.uniform([6, 5, 3], rng.batch_seed(SEED, 0, 6)).numpy()
    parts = [rng.uniform([2, 5, 3], rng.batch_seed(SEED, 2 * i, 2)).numpy() for i in range(3)]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    # rows x positions flattened (how the encoder applies dropout) and odd sizes (5 x 3 = 15
    # numbers per example: not a multiple of Philox's 4 per counter step)
    rows = rng.uniform([4 * 5, 3], rng.batch_seed(SEED, 2, 4)).numpy()
    np.testing.assert_array_equal(whole[2:6].reshape(20, 3), rows)
    xla = tf.function(lambda: rng.uniform([2, 5, 3], rng.batch_seed(SEED, 2, 2)),
                      jit_compile=True)
    np.testing.assert_array_equal(xla().numpy(), whole[2:4])


def test_split_keeps_batch_position_and_changes_keys():
    a, b = rng.split(rng.batch_seed(SEED, 4, 2), 2)
    assert a.numpy()[2:].tolist() == b.numpy()[2:].tolist() == [4, 2]
    assert a.numpy()[:2].tolist() != b.numpy()[:2].tolist()
    u = rng.uniform([1000], SEED).numpy()
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.05


def test_dropout_drops_the_rate_and_rescales():
    from electra_tf.layers import dropout

    x = tf.ones([400, 250])
    out = dropout(x, 0.1, SEED).numpy()
    assert abs((out == 0).mean() - 0.1) < 0.005
    np.testing.assert_allclose(out[out != 0], 1 / 0.9, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.01
    np.testing.assert_array_equal(dropout(x, 0.1, SEED).numpy(), out)  # stateless
    assert dropout(x, 0.0, SEED) is x and dropout(x, 0.1, None) is x


def _ngrams(values: np.ndarray, n: int = 3) -> set:
    flat = values.ravel()
    return {tuple(flat[i:i + n]) for i in range(len(flat) - n + 1)}


@pytest.mark.parametrize("objective", ["electra", "mlm"])
def test_masking_sampling_and_dropout_draw_from_separate_streams(objective, monkeypatch):
    # The pipeline masks batch k with a seed from (run seed, k) and the loop corrupts it and
    # drops units at step k with a seed from (run seed, k): every random number of that step
    # (masking, random tokens, the sampling's uniforms, each dropout) must come from its own
    # stream: with one key, the first uniforms of step k's sampling would be batch k's
    # masking uniforms.
    from helpers import CLS, MASK, SEP, packed_batch, tiny_config

    from electra_tf import config, training
    from electra_tf.data import masking
    from electra_tf.models import build_pretrainer

    cfg = tiny_config()
    if objective == "mlm":
        cfg = cfg.replace(pretrain=config.BERT_MLM)
    draws, dropout_keys, philox_keys = [], [], set()
    originals = {"bits": rng.bits, "unit_words": rng.unit_words}

    def recording(name):
        def draw(shape, seed):
            out = originals[name](shape, seed)
            draws.append(out.numpy())
            key = tuple(tf.cast(seed, tf.int32).numpy()[:2])
            if name == "unit_words":
                dropout_keys.append(key)
            else:
                philox_keys.add(key)
            return out
        return draw

    model = build_pretrainer(cfg)
    for name in originals:
        monkeypatch.setattr(rng, name, recording(name))
    tf.config.run_functions_eagerly(True)  # so the shared block function records its draws
    try:
        for k in (0, 1):
            raw = packed_batch(8, cfg.pretrain.max_seq_length, cfg.model.vocab_size, seed=k)
            batch = masking.mask_batch(
                raw, masking.batch_seed(cfg.pretrain.seed, k), mask_prob=0.15,
                num_predictions=cfg.pretrain.num_predictions, mask_id=MASK,
                special_ids=(CLS, SEP, MASK), mask_token_rate=cfg.pretrain.mask_token_rate,
                random_token_rate=cfg.pretrain.random_token_rate, vocab_size=100)
            model(batch, training=True,
                  seed=training.sampling_seed(cfg.pretrain.seed, k, 0, 8))
    finally:
        tf.config.run_functions_eagerly(False)
    expected = 2 * (3 if objective == "mlm" else 2)  # masking draws per batch
    assert len(draws) > expected + 10  # masking, sampling and every dropout were recorded
    # the dropout hash and Philox are different functions: a dropout sharing another's key
    # would repeat its words, one sharing Philox's would not, so its keys are compared too
    assert len(dropout_keys) > 10 and len(set(dropout_keys)) == len(dropout_keys)
    assert not philox_keys & set(dropout_keys)
    owner = {}
    for i, values in enumerate(draws):
        for gram in _ngrams(values):
            if owner.setdefault(gram, i) != i:
                pytest.fail(f"draw {i} (shape {values.shape}) repeats numbers of draw "
                            f"{owner[gram]} (shape {draws[owner[gram]].shape})")


def test_streams_are_named_and_keep_the_batch_position():
    masked = rng.stream(rng.batch_seed(SEED, 4, 2), "sampling").numpy()
    assert masked[2:].tolist() == [4, 2]
    keys = {tuple(rng.stream(SEED, p).numpy()) for p in rng.PURPOSES}
    assert len(keys) == len(rng.PURPOSES) and tuple(SEED.numpy()) not in keys
    with pytest.raises(ValueError, match="unknown random stream"):
        rng.stream(SEED, "typo")


@pytest.mark.parametrize("last", [6, 5])
def test_dropout_units_keep_the_batch_layout_compiled_or_not(last):
    # each example keeps the same units however the global batch is split
    whole = rng.keep_units([6, last, 7], 0.3, rng.batch_seed(SEED, 0, 6)).numpy()
    assert whole.dtype == np.bool_ and whole.shape == (6, last, 7)
    parts = [rng.keep_units([2, last, 7], 0.3, rng.batch_seed(SEED, 2 * i, 2)).numpy()
             for i in range(3)]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    # a shape unknown when tracing runs the integer ops uncompiled: the same units
    unknown = tf.function(lambda shape: rng.keep_units(shape, 0.3, rng.batch_seed(SEED, 2, 2)),
                          input_signature=[tf.TensorSpec([3], tf.int32)])
    np.testing.assert_array_equal(unknown(tf.constant([2, last, 7])).numpy(), whole[2:4])
    inside_xla = tf.function(
        lambda: rng.keep_units([2, last, 7], 0.3, rng.batch_seed(SEED, 2, 2)), jit_compile=True)
    np.testing.assert_array_equal(inside_xla().numpy(), whole[2:4])
    np.testing.assert_array_equal(rng.keep_units([6, last, 7], 0.3, SEED).numpy(),
                                  whole)  # a [2] seed is the batch at example 0


def _correlation(a, b):
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_units_drop_at_the_rate_independently(rate):
    shape = [400, 1000]  # 400,000 units: 5 standard deviations of a rate are <= 0.004
    keep = rng.keep_units(shape, rate, SEED).numpy()
    sigma = np.sqrt(rate * (1 - rate) / keep.size)
    assert abs((~keep).mean() - rate) < 5 * sigma
    # correlations of independent units are ~N(0, 1 / n): 5 / sqrt(n) ~ 0.008
    bound = 5 / np.sqrt(keep.size)
    assert abs(_correlation(keep[:, 1:], keep[:, :-1])) < bound  # neighbours in a row
    assert abs(_correlation(keep[1:], keep[:-1])) < bound  # the same unit of the next row
    a, b = rng.split(SEED, 2)
    others = {"split seeds": (a, b),
              "first key word": (SEED, SEED + tf.constant([1, 0])),
              "second key word": (SEED, SEED + tf.constant([0, 1]))}
    for name, (s, t) in others.items():
        x, y = rng.keep_units(shape, rate, s).numpy(), rng.keep_units(shape, rate, t).numpy()
        assert abs(_correlation(x, y)) < bound, name


def test_dropout_units_past_two_to_the_32_elements_are_their_own():
    # a global batch can hold more than 2^32 units (2,048 x 16 heads x 512 x 512): the index's
    # high word takes part, so the units 2^32 further on are not a repeat
    per_example = 2**20
    near = rng.keep_units([1, per_example], 0.5, rng.batch_seed(SEED, 100, 1)).numpy()
    far = rng.keep_units([1, per_example], 0.5,
                         rng.batch_seed(SEED, 100 + 2**32 // per_example, 1)).numpy()
    assert abs(_correlation(near, far)) < 5 / np.sqrt(per_example)
    assert abs(far.mean() - 0.5) < 5 * 0.5 / np.sqrt(per_example)
