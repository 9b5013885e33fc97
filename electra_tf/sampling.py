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
    logits = tf.cast(tf.stop_gradient(logits), tf.float32) / temperature
    if disallow_ids is not None:
        logits -= 1000.0 * tf.one_hot(disallow_ids, tf.shape(logits)[-1], dtype=tf.float32)
    uniform = rng.uniform(tf.shape(logits), seed)
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)
