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
    draws = []
    original = rng.bits

    def recording(shape, seed):
        out = original(shape, seed)
        draws.append(out.numpy())
        return out

    model = build_pretrainer(cfg)
    monkeypatch.setattr(rng, "bits", recording)
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
def test_16_bit_draws_keep_the_batch_layout_and_are_uniform(last):
    # dropout's keep decisions use 16 bits (half the Philox work); each example must still
    # draw the same numbers however the global batch is split, eagerly and under XLA
    whole = rng.bits16([6, last], rng.batch_seed(SEED, 0, 6)).numpy()
    assert whole.dtype == np.uint16 and whole.shape == (6, last)
    parts = [rng.bits16([2, last], rng.batch_seed(SEED, 2 * i, 2)).numpy() for i in range(3)]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    xla = tf.function(lambda: rng.bits16([2, last], rng.batch_seed(SEED, 2, 2)),
                      jit_compile=True)
    np.testing.assert_array_equal(xla().numpy(), whole[2:4])
    many = rng.bits16([300, 333], SEED).numpy().astype(np.float64) / 2**16
    assert abs(many.mean() - 0.5) < 0.005 and abs((many < 0.1).mean() - 0.1) < 0.005
    assert len(np.unique(rng.bits16([4, 2], SEED).numpy())) == 8  # both halves used
