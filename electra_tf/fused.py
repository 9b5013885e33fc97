"""The encoder block's elementwise chains as XLA-compiled kernels, forward and backward.

On CPU every TF elementwise kernel is one pass over memory, and a training block spends more
time in them (bias adds, GELU, dropout, residual adds, LayerNorm, casts) than in its matmuls.
Compiling a whole training step with XLA fuses them but loses oneDNN's matmuls (7-11x slower on
an AMX Xeon, bench/results/pretrain_step_xla_2026-12-02.jsonl). Here only the chains between
two matmuls are compiled, each as one `tf.function(jit_compile=True)` for its forward and one
for its backward, written out: the matmuls stay TF's (oneDNN), the chains become a few fused
loops. Used for training only (`_block` with a dropout seed); inference and exported
SavedModels keep plain TF ops, which every TensorFlow runtime serves.

Shapes: M rows (B * L), H hidden size, F FFN size. `y` is a matmul's output in the compute
dtype (bfloat16 or float32) before its bias; biases, LayerNorm weights and all statistics are
float32, as the unfused block computes them.
"""

from __future__ import annotations

import math

import tensorflow as tf

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def _compiled(fn):
    return tf.function(fn, jit_compile=True, autograph=False, reduce_retracing=True)


# --- bias + GELU -----------------------------------------------------------------------------

def _bias_gelu_forward(y, bias):
    u = tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)  # [M, F]
    return tf.cast(u * (0.5 + 0.5 * tf.math.erf(u * _INV_SQRT2)), y.dtype)


def _bias_gelu_backward(y, bias, dout):
    u = tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)
    t = u * _INV_SQRT2
    slope = 0.5 + 0.5 * tf.math.erf(t) + t * tf.exp(-t * t) * _INV_SQRT_PI  # Phi(u) + u phi(u)
    du = tf.cast(dout, tf.float32) * slope  # [M, F]
    return tf.cast(du, y.dtype), tf.cast(tf.reduce_sum(du, 0), bias.dtype)


_bias_gelu_forward_xla = _compiled(_bias_gelu_forward)
_bias_gelu_backward_xla = _compiled(_bias_gelu_backward)


@tf.custom_gradient
def bias_gelu(y, bias):
    """gelu(y + bias), the exact (erf) GELU as `layers.gelu`. y [M, F], bias [F] ->
    [M, F] in y's dtype; the gradient returns (d y, d bias)."""
    return (_bias_gelu_forward_xla(y, bias),
            lambda dout: _bias_gelu_backward_xla(y, bias, dout))


# --- bias + dropout + residual + LayerNorm -----------------------------------------------------

def _add_norm_forward(y, bias, keep, residual, gamma, beta, eps):
    branch = tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)  # [M, H]
    if keep is not None:
        branch = tf.where(keep, branch, 0.0)
    z = tf.cast(residual, tf.float32) + branch
    mean = tf.reduce_mean(z, -1, keepdims=True)  # [M, 1]
    centered = z - mean
    inv = tf.math.rsqrt(tf.reduce_mean(centered * centered, -1, keepdims=True) + eps)  # [M, 1]
    xhat = centered * inv  # [M, H]
    return tf.cast(xhat * gamma + beta, y.dtype), xhat, inv


def _add_norm_backward(dout, xhat, inv, keep, gamma):
    dtype = dout.dtype
    dout = tf.cast(dout, tf.float32)
    g = dout * gamma  # d loss / d xhat
    dz = inv * (g - tf.reduce_mean(g, -1, keepdims=True)
                - xhat * tf.reduce_mean(g * xhat, -1, keepdims=True))  # [M, H]
    dbranch = dz if keep is None else tf.where(keep, dz, 0.0)
    return (tf.cast(dbranch, dtype), tf.cast(dz, dtype),
            tf.reduce_sum(dbranch, 0), tf.reduce_sum(dout * xhat, 0), tf.reduce_sum(dout, 0))


_add_norm_forward_xla = _compiled(_add_norm_forward)
_add_norm_backward_xla = _compiled(_add_norm_backward)


def add_norm(y, bias, keep, residual, gamma, beta, eps: float):
    """LayerNorm(residual + dropout(y + bias)), statistics in float32. y, residual [M, H] in the
    compute dtype; bias [H]; gamma, beta [H] float32; keep [M, H] bool, the dropout's kept units
    (their 1 / (1 - rate) already folded into y's kernel and bias), or None for no dropout.
    -> [M, H] in y's dtype."""
    @tf.custom_gradient
    def run(y, bias, residual, gamma, beta):
        out, xhat, inv = _add_norm_forward_xla(y, bias, keep, residual, gamma, beta, eps)

        def grad(dout):
            dbranch, dz, dbias, dgamma, dbeta = _add_norm_backward_xla(dout, xhat, inv, keep,
                                                                       gamma)
            return dbranch, tf.cast(dbias, bias.dtype), dz, dgamma, dbeta

        return out, grad

    return run(y, bias, residual, gamma, beta)
