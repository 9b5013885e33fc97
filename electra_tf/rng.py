"""Stateless random numbers that are identical eagerly, in tf.data and under XLA.

`tf.random.stateless_uniform` with a float dtype gives different numbers under XLA than on the
CPU kernel (measured with TF 2.21: same seed, other values), while the raw Philox bits agree.
So we draw the bits and map them to floats ourselves: the top 24 bits / 2^24 -> [0, 1).
"""

from __future__ import annotations

import tensorflow as tf


def uniform(shape, seed: tf.Tensor) -> tf.Tensor:
    """float32 uniform in [0, 1) of `shape` from a [2] int32 stateless seed (Philox)."""
    bits = tf.random.stateless_uniform(shape, tf.cast(seed, tf.int32), minval=None, maxval=None,
                                       dtype=tf.uint32, alg="philox")
    top24 = tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32))
    return tf.cast(top24, tf.float32) * (1.0 / (1 << 24))


def split(seed: tf.Tensor, num: int = 2) -> list[tf.Tensor]:
    """`num` independent [2] seeds from one [2] seed."""
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), num=num,
                                                             alg="philox"))
