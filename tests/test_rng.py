"""Batch-position-aware stateless random numbers: the same numbers per example however a
global batch is split into replicas and micro-batches, eagerly and under XLA."""

import numpy as np
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
