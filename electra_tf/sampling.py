"""Sampling of replacement tokens from the generator's softmax, by its inverse CDF.

The paper samples each masked slot's replacement from the generator's softmax. The authors'
code does it by the Gumbel-max trick: a uniform number per vocabulary entry (19.5M per step for
ELECTRA-Small: 640 slots x 30,522 words), two logs over them and an argmax: 137 ms on 2 CPU
cores, against 31 ms here (bench/results/kernels.md), in a step of ~1.5 s.
Here one uniform per slot picks the token where the softmax's cumulative sum passes it: the
same distribution (float32 resolution, as Gumbel-max with the authors' 24-bit uniforms), other
draws for a given seed, and a single pass of exp over the logits. The cumulative sum runs in
two levels (blocks of BLOCK words, then inside the chosen block), so no [B, N, V] cumsum is
formed and float32 sums stay short.
"""

from __future__ import annotations

import tensorflow as tf

from electra_tf import rng

BLOCK = 128  # words per block of the two-level cumulative sum


def sample(logits: tf.Tensor, seed: tf.Tensor, temperature: float = 1.0,
           disallow_ids: tf.Tensor | None = None) -> tf.Tensor:
    """Draws one token per slot from softmax(logits / temperature).

    Args:
      logits: [B, N, V] generator logits; gradients are stopped (no gradient from the
        discriminator reaches the generator through the sample).
      seed: [2] or [4] int32 stateless seed (see `rng.bits`); the same seed gives the same
        sample on CPU, in tf.data and under XLA, and for a [4] seed the same for a slot whatever
        the replicas or micro-batches its batch is split into.
      temperature: the softmax temperature (1.0 in the paper).
      disallow_ids: optional [B, N] ids whose logit is lowered by 1000 (the official
        `disallow_correct`, which forces a replacement to differ from the original).
    Returns:
      [B, N] int32 sampled ids.
    """
    logits = tf.cast(tf.stop_gradient(logits), tf.float32)
    uniform = rng.uniform(tf.shape(logits)[:2], seed)  # [B, N], one per slot
    return _inverse_cdf(logits, uniform, float(temperature), disallow_ids)


@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _inverse_cdf(logits, uniform, temperature, disallow_ids):
    """logits [B, N, V] float32, uniform [B, N] in [0, 1) -> [B, N] int32: the first word whose
    cumulative softmax mass exceeds uniform x the total (one compiled kernel: the exp, the pad
    and the block sums are one pass over the logits)."""
    if temperature != 1.0:
        logits /= temperature
    if disallow_ids is not None:  # lowered where they are, not through a [B, N, V] one-hot
        logits = _lower_at(logits, disallow_ids, 1000.0)
    shape = tf.shape(logits)
    vocab = shape[2]
    blocks = (vocab + BLOCK - 1) // BLOCK
    padded = tf.pad(logits, [[0, 0], [0, 0], [0, blocks * BLOCK - vocab]],
                    constant_values=float("-inf"))  # padding has zero mass
    mass = tf.exp(padded - tf.reduce_max(logits, -1, keepdims=True))  # unnormalized softmax
    mass = tf.reshape(mass, [shape[0], shape[1], blocks, BLOCK])
    block_mass = tf.reduce_sum(mass, -1)  # [B, N, blocks]
    cum = tf.cumsum(block_mass, -1)
    target = uniform * cum[..., -1]  # [B, N], in [0, total)
    block = _first_past(cum, block_mass, target)  # [B, N]
    # the mass of the blocks before: exactly the cum[block - 1] that was compared with target
    before = tf.gather(tf.pad(cum[..., :-1], [[0, 0], [0, 0], [1, 0]]), block, batch_dims=2)
    inside = tf.gather(mass, block, batch_dims=2)  # [B, N, BLOCK]
    word = _first_past(tf.cumsum(inside, -1), inside, target - before)
    return block * BLOCK + word


def _first_past(cum, mass, target):
    """cum, mass [B, N, K], target [B, N] -> [B, N] the first k with cum[k] > target, which has
    mass > 0. A target that float rounding puts at or past the end takes the last k with
    mass, never a zero-mass (padding or disallowed) one."""
    first = tf.reduce_sum(tf.cast(cum <= target[..., None], tf.int32), -1)
    k = tf.shape(mass)[-1]
    last = k - 1 - tf.argmax(tf.reverse(tf.cast(mass > 0, tf.int32), [-1]), -1,
                             output_type=tf.int32)
    return tf.minimum(first, last)


def _lower_at(logits: tf.Tensor, ids: tf.Tensor, amount: float) -> tf.Tensor:
    """logits [B, N, V] with logits[b, n, ids[b, n]] lowered by `amount`."""
    shape = tf.shape(ids)
    b, n = tf.meshgrid(tf.range(shape[0]), tf.range(shape[1]), indexing="ij")
    index = tf.stack([b, n, tf.cast(ids, tf.int32)], -1)  # [B, N, 3]
    return tf.tensor_scatter_nd_sub(logits, index, tf.fill(shape, tf.constant(amount)))
