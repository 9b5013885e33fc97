"""Stateless random numbers that are identical eagerly, in tf.data and under XLA.

`tf.random.stateless_uniform` with a float dtype gives different numbers under XLA than on the
CPU kernel (measured with TF 2.21: same seed, other values), while the raw Philox bits agree.
So we draw the bits and map them to floats ourselves: the top 24 bits / 2^24 -> [0, 1).
"""

from __future__ import annotations

import tensorflow as tf

_PHILOX = 1  # tf.random.Algorithm.PHILOX


def uniform(shape, seed: tf.Tensor) -> tf.Tensor:
    """float32 uniform in [0, 1) of `shape` from a stateless seed: the top 24 of `bits`."""
    top24 = tf.bitwise.right_shift(bits(shape, seed), tf.constant(8, tf.uint32))
    return tf.cast(top24, tf.float32) * (1.0 / (1 << 24))


def bits(shape, seed: tf.Tensor) -> tf.Tensor:
    """uint32 random bits of `shape` from a stateless seed (Philox).

    `seed` is [2] int32, or [4] int32 `(key0, key1, first_example, examples)` for a tensor whose
    leading dimension runs over `examples` examples (rows or rows x positions) of a batch that
    starts at global example `first_example`. Each example then gets the numbers it would get
    as part of the whole global batch, so one device, several replicas and gradient
    accumulation draw identical masks and samples for identical data.

    The seed's key is the Philox key directly (counter 0): `tf.random.stateless_uniform`
    first scrambles the seed with two more random ops, which in a model with ~75 dropout calls
    adds hundreds of graph nodes and seconds of tracing.
    """
    seed = tf.cast(seed, tf.int32)
    halves = tf.cast(tf.bitcast(seed[:2], tf.uint32), tf.uint64)
    key = tf.bitwise.bitwise_or(tf.bitwise.left_shift(halves[:1], tf.constant(32, tf.uint64)),
                                halves[1:])
    if seed.shape[0] == 2:
        return tf.raw_ops.StatelessRandomUniformFullIntV2(
            shape=shape, key=key, counter=tf.zeros([2], tf.uint64), alg=_PHILOX,
            dtype=tf.uint32)
    # Philox yields 4 numbers per counter step: start at the counter of the batch's first
    # element, draw 4 more than needed, and drop the 0-3 that precede it.
    count = tf.reduce_prod(tf.cast(shape, tf.int64))
    skip = tf.cast(seed[2], tf.int64) * (count // tf.cast(seed[3], tf.int64))
    counter = tf.stack([tf.cast(skip // 4, tf.uint64), tf.constant(0, tf.uint64)])
    drawn = tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=tf.reshape(count + 4, [1]), key=key, counter=counter, alg=_PHILOX,
        dtype=tf.uint32)
    return tf.reshape(tf.slice(drawn, tf.reshape(skip % 4, [1]), tf.reshape(count, [1])), shape)


def keep_units(shape, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """Dropout's kept units: bool of `shape`, each True with probability 1 - rate (to 2^-32),
    from a stateless seed laid out as `bits`' ([4]: each example keeps its units however the
    global batch is split). The same seed gives the same units eagerly, in tf.data and under
    XLA.

    A counter-based hash of (seed, global element index), `unit_words`, not Philox: compiled
    with XLA it draws a [32, 4, 128, 128] mask 3x as fast as TF's Philox kernel draws 16-bit
    decisions (bench/results/kernels.md), and the bfloat16 training step runs 1.06x as fast
    (bench/results/step_ab.md). A shape known when tracing runs the compiled kernel; another
    runs the same integer ops uncompiled.
    """
    static = tf.get_static_value(tf.convert_to_tensor(shape))
    if static is None:
        return _keep_units(shape, rate, seed)
    return _keep_units_compiled(tuple(int(d) for d in static), rate, seed)


def _keep_units(shape, rate: float, seed: tf.Tensor) -> tf.Tensor:
    threshold = tf.constant(min(round(rate * 2**32), 2**32 - 1), tf.uint32)
    return unit_words(shape, seed) >= threshold


_keep_units_compiled = tf.function(_keep_units, jit_compile=True, autograph=False)


def unit_words(shape, seed: tf.Tensor) -> tf.Tensor:
    """The uint32 words of `keep_units`: the keyed hash of each element's global index, two
    keyed rounds of `_mix` (the index's low word, then its high word: a global batch can hold
    more than 2^32 units)."""
    seed = tf.cast(seed, tf.int32)
    key = tf.bitcast(seed[:2], tf.uint32)
    shape = tf.convert_to_tensor(shape)
    count = tf.reduce_prod(shape)
    offset = tf.constant(0, tf.int64)
    if seed.shape[0] == 4:  # offset of the batch's first element in the global batch
        offset = tf.cast(seed[2], tf.int64) * tf.cast(count // seed[3], tf.int64)
    start = tf.cast(tf.bitwise.bitwise_and(offset, 0xFFFFFFFF), tf.uint32)
    low = tf.bitcast(tf.range(count), tf.uint32) + start  # [count], wraps past 2^32
    carry = tf.cast(low < start, tf.uint32)
    high = tf.cast(tf.bitwise.right_shift(offset, tf.constant(32, tf.int64)), tf.uint32) + carry
    words = _mix(_mix(tf.bitwise.bitwise_xor(low, key[0]))
                 + _mix(tf.bitwise.bitwise_xor(high, key[1])))
    return tf.reshape(words, shape)


def _mix(x: tf.Tensor) -> tf.Tensor:
    """A bijection of uint32 words with low bias: xor-shift, multiply, xor-shift, multiply,
    xor-shift (the "lowbias32" constants of C. Wellons' hash-prospector search)."""
    for shift, factor in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(shift, tf.uint32)))
        x = x * tf.constant(factor, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def batch_seed(seed: tf.Tensor, first_example, examples) -> tf.Tensor:
    """[4] seed for a (micro-)batch of `examples` starting at global example `first_example`."""
    return tf.concat([tf.cast(seed, tf.int32)[:2],
                      tf.cast(tf.stack([first_example, examples]), tf.int32)], 0)


# Every purpose draws from its own stream: its tag is folded into the key, so the masking of
# batch k and the sampling or dropout of step k never share numbers even when they start
# from the same (run seed, k).
PURPOSES = ("masking", "sampling", "generator_dropout", "discriminator_dropout", "task_dropout")


def stream(seed: tf.Tensor, purpose: str) -> tf.Tensor:
    """The seed of `purpose`'s stream (one of PURPOSES) derived from `seed`; a [4] seed keeps
    its batch position."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; expected one of {PURPOSES}")
    seed = tf.cast(seed, tf.int32)
    key = tf.random.experimental.stateless_fold_in(seed[:2], PURPOSES.index(purpose) + 1,
                                                   alg="philox")
    return tf.concat([key, seed[2:]], 0) if seed.shape[0] == 4 else key


def split(seed: tf.Tensor, num: int = 2) -> list[tf.Tensor]:
    """`num` independent seeds from one (hashed, as `stateless_split`); a [4] seed's batch
    position is kept in each.

    Call it once per layer with all the seeds the layer needs, not once per random op.
    """
    seed = tf.cast(seed, tf.int32)
    keys = tf.random.experimental.stateless_split(seed[:2], num=num, alg="philox")
    if seed.shape[0] == 4:
        keys = tf.concat([keys, tf.tile(seed[tf.newaxis, 2:], [num, 1])], 1)
    return tf.unstack(keys, num=num)
