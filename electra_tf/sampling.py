"""Gumbel-max sampling of replacement tokens from the generator, as in the paper's code."""

from __future__ import annotations

import tensorflow as tf

from electra_tf import rng


def gumbel_sample(logits: tf.Tensor, seed: tf.Tensor, temperature: float = 1.0,
                  disallow_ids: tf.Tensor | None = None) -> tf.Tensor:
    """Draws one token per slot from softmax(logits / temperature) by the Gumbel-max trick.

    Args:
      logits: [B, N, V] generator logits; gradients are stopped (no gradient from the
        discriminator reaches the generator through the sample).
      seed: [2] int32 stateless seed; the same seed gives the same sample on CPU, in tf.data
        and under XLA.
      temperature: the softmax temperature (1.0 in the paper).
      disallow_ids: optional [B, N] ids whose logit is lowered by 1000 (the official
        `disallow_correct`, which forces a replacement to differ from the original).
    Returns:
      [B, N] int32 sampled ids.
    """
    # Each line below is a pass over [B, N, V] (19.5M values for Small), so none is spent on
    # an identity: no division by a temperature of 1, and the disallowed logits are lowered
    # where they are (B x N of them) instead of through a one-hot of the whole tensor. The
    # values are those of the authors' x / T - 1000 * one_hot, bit for bit.
    logits = tf.cast(tf.stop_gradient(logits), tf.float32)
    if temperature != 1.0:
        logits /= temperature
    if disallow_ids is not None:
        logits = _lower_at(logits, disallow_ids, 1000.0)
    uniform = rng.uniform(tf.shape(logits), seed)
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


def _lower_at(logits: tf.Tensor, ids: tf.Tensor, amount: float) -> tf.Tensor:
    """logits [B, N, V] with logits[b, n, ids[b, n]] lowered by `amount`."""
    shape = tf.shape(ids)
    b, n = tf.meshgrid(tf.range(shape[0]), tf.range(shape[1]), indexing="ij")
    index = tf.stack([b, n, tf.cast(ids, tf.int32)], -1)  # [B, N, 3]
    return tf.tensor_scatter_nd_sub(logits, index, tf.fill(shape, tf.constant(amount)))
