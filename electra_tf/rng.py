"""Stateless random numbers that are identical eagerly, in tf.data and under XLA.

`tf.random.stateless_uniform` with a float dtype gives different numbers under XLA than on the
CPU kernel (measured with TF 2.21: same seed, other values), while the raw Philox bits agree.
So we draw the bits and map them to floats ourselves: the top 24 bits / 2^24 -> [0, 1).
"""

from __future__ import annotations

import tensorflow as tf

_PHILOX = 1  # tf.random.Algorithm.PHILOX


def uniform(shape, seed: tf.Tensor) -> tf.Tensor:
    """float32 uniform in [0, 1) of `shape` from a [2] int32 stateless seed (Philox).

    The seed's 64 bits are the Philox key directly (counter 0): `tf.random.stateless_uniform`
    first scrambles the seed with two more random ops, which in a model with ~75 dropout calls
    adds hundreds of graph nodes and seconds of tracing.
    """
    halves = tf.cast(tf.bitcast(tf.cast(seed, tf.int32), tf.uint32), tf.uint64)
    key = tf.bitwise.bitwise_or(tf.bitwise.left_shift(halves[:1], tf.constant(32, tf.uint64)),
                                halves[1:])
    bits = tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=shape, key=key, counter=tf.zeros([2], tf.uint64), alg=_PHILOX, dtype=tf.uint32)
    top24 = tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32))
    return tf.cast(top24, tf.float32) * (1.0 / (1 << 24))


def split(seed: tf.Tensor, num: int = 2) -> list[tf.Tensor]:
    """`num` independent [2] seeds from one [2] seed (hashed, as `stateless_split`).

    Call it once per layer with all the seeds the layer needs, not once per random op.
    """
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), num=num,
                                                             alg="philox"), num=num)
