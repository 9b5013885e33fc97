"""Elementwise chains as XLA-compiled kernels, forward and backward: the encoder block's in
training (attention mask + softmax + dropout, bias + dropout + residual + LayerNorm,
bias + GELU), the MLM head's float32 bias and the masked-LM cross-entropy.

On CPU every TF elementwise kernel is one pass over memory, and a training block spent more
time in them (bias adds, GELU, dropout, residual adds, LayerNorm, casts) than in its matmuls.
Compiling a whole training step with XLA fuses them but loses oneDNN's matmuls (7-11x slower on
an AMX Xeon, bench/results/pretrain_step_xla_2026-12-02.jsonl). Here only the chains between
two matmuls are compiled, each as one `tf.function(jit_compile=True)` for its forward and one
for its backward, written out: the matmuls stay TF's (oneDNN), the chains become a few fused
loops (bench/results/kernels.md). The block uses them for training only (`_block` with a
dropout seed): inference and exported SavedModels keep plain TF ops, which every TensorFlow
runtime serves. The MLM head and loss, which exports do not hold, use them always.

Shapes: M rows (B * L), H hidden size, F FFN size. `y` is a matmul's output in the compute
dtype (bfloat16 or float32) before its bias; biases are added, softmaxes and LayerNorm
statistics computed in float32, as the unfused block does.
"""

from __future__ import annotations

import math

import tensorflow as tf

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def _compiled(fn):
    return tf.function(fn, jit_compile=True, autograph=False, reduce_retracing=True)


def _row_sum(x):
    """x [.., K] float32 -> [.., 1], the sum over the last axis as a matmul with ones. XLA's CPU
    backend runs a reduction as reduce-window passes and a reduce over a copy of its input; a
    dot is one pass (the LayerNorm's and the softmax's row sums: bench/results/kernels.md)."""
    k = _row_length(x)
    rows = tf.matmul(tf.reshape(x, [-1, k]), tf.ones([k, 1], x.dtype))  # [rows, 1]
    return tf.reshape(rows, tf.concat([tf.shape(x)[:-1], [1]], 0))


def _row_mean(x):
    return _row_sum(x) / tf.cast(_row_length(x), x.dtype)


def _row_length(x):
    """K of x [.., K]: static when traced with it, else read when the kernel runs."""
    return x.shape[-1] or tf.shape(x)[-1]


def _reduce_row_mean(x):
    return tf.reduce_mean(x, -1, keepdims=True)


# --- the formulas, shared with the plain ops of `layers` (float32 in, float32 out) ---------------

def gelu_cdf(u):
    """Phi(u) = 0.5 (1 + erf(u / sqrt 2)), the authors' form: GELU(u) = u Phi(u)."""
    return 0.5 + 0.5 * tf.math.erf(u * _INV_SQRT2)


def gelu_slope(u, cdf):
    """GELU's derivative Phi(u) + u phi(u), given cdf = Phi(u)."""
    t = u * _INV_SQRT2
    return cdf + t * tf.exp(-t * t) * _INV_SQRT_PI  # u phi(u) = t exp(-t^2) / sqrt(pi)


def layer_norm_grads(dout, xhat, inv, gamma, row_mean=_reduce_row_mean):
    """LayerNorm's gradients from d out [M, H], the normalized rows xhat [M, H] and 1 / std
    [M, 1]: (d input [M, H], d gamma [H], d beta [H]). The closed form passes over [M, H]
    about half as often as TF's gradient of the moments form. `row_mean` [M, H] -> [M, 1]:
    TF's reduction for plain ops, `_row_mean` in compiled kernels."""
    g = dout * gamma  # d loss / d xhat
    dx = inv * (g - row_mean(g) - xhat * row_mean(g * xhat))
    return dx, tf.reduce_sum(dout * xhat, 0), tf.reduce_sum(dout, 0)


# --- bias + GELU -----------------------------------------------------------------------------

def _bias_gelu_forward(y, bias):
    u = tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)  # [M, F]
    return tf.cast(u * gelu_cdf(u), y.dtype)


def _bias_gelu_backward(y, bias, dout):
    u = tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)
    du = tf.cast(dout, tf.float32) * gelu_slope(u, gelu_cdf(u))  # [M, F]
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

def _normalized(z, eps):
    """z [M, H] -> (xhat, mean, 1 / std) [M, H], [M, 1], [M, 1], statistics in float32."""
    z = tf.cast(z, tf.float32)
    mean = _row_mean(z)
    centered = z - mean
    inv = tf.math.rsqrt(_row_mean(centered * centered) + eps)
    return centered * inv, mean, inv


def _add_norm_forward(y, bias, keep, residual, gamma, beta, eps):
    branch = tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)  # [M, H]
    if keep is not None:
        branch = tf.where(keep, branch, 0.0)
    # the sum rounded to the compute dtype, as the unfused block adds; kept for the gradient
    # instead of the float32 normalized rows (half the bytes written here and read back there)
    # and the row statistics [M, 1] (the backward's two row reductions fewer)
    z = tf.cast(tf.cast(residual, tf.float32) + branch, y.dtype)
    xhat, mean, inv = _normalized(z, eps)
    return tf.cast(xhat * gamma + beta, y.dtype), z, mean, inv


def _add_norm_backward(dout, z, mean, inv, keep, gamma):
    dtype = dout.dtype
    xhat = (tf.cast(z, tf.float32) - mean) * inv  # [M, H]
    dz, dgamma, dbeta = layer_norm_grads(tf.cast(dout, tf.float32), xhat, inv, gamma,
                                          _row_mean)
    dbranch = dz if keep is None else tf.where(keep, dz, 0.0)
    return (tf.cast(dbranch, dtype), tf.cast(dz, dtype), tf.reduce_sum(dbranch, 0), dgamma,
            dbeta)


_add_norm_forward_xla = _compiled(_add_norm_forward)
_add_norm_backward_xla = _compiled(_add_norm_backward)


def add_norm(y, bias, keep, residual, gamma, beta, eps: float):
    """LayerNorm(residual + dropout(y + bias)), statistics in float32. y, residual [M, H] in the
    compute dtype; bias [H]; gamma, beta [H] float32; keep [M, H] bool, the dropout's kept units
    (their 1 / (1 - rate) already folded into y's kernel and bias), or None for no dropout.
    -> [M, H] in y's dtype."""
    @tf.custom_gradient
    def run(y, bias, residual, gamma, beta):
        out, z, mean, inv = _add_norm_forward_xla(y, bias, keep, residual, gamma, beta, eps)

        def grad(dout):
            dbranch, dz, dbias, dgamma, dbeta = _add_norm_backward_xla(dout, z, mean, inv, keep,
                                                                       gamma)
            return dbranch, tf.cast(dbias, bias.dtype), dz, dgamma, dbeta

        return out, grad

    return run(y, bias, residual, gamma, beta)


# --- attention probabilities: mask + softmax + dropout -----------------------------------------

def _attention_forward(scores, mask_adder, keep):
    z = tf.cast(scores, tf.float32) + tf.cast(mask_adder, tf.float32)  # [B, A, L, L]
    e = tf.exp(z - tf.reduce_max(z, -1, keepdims=True))
    probs = e / _row_sum(e)  # float32 softmax
    dropped = probs if keep is None else tf.where(keep, probs, 0.0)
    return tf.cast(dropped, scores.dtype), probs


def _attention_backward(dout, probs, keep):
    dprobs = tf.cast(dout, tf.float32)
    if keep is not None:
        dprobs = tf.where(keep, dprobs, 0.0)
    dz = probs * (dprobs - _row_sum(dprobs * probs))
    return tf.cast(dz, dout.dtype)


_attention_forward_xla = _compiled(_attention_forward)
_attention_backward_xla = _compiled(_attention_backward)


def attention_probs(scores, mask_adder, keep):
    """dropout(softmax(scores + mask_adder)), the softmax in float32. scores [B, A, L, L] in
    the compute dtype (scaled), mask_adder [B, 1, 1, L], keep [B, A, L, L] bool (the dropout's
    1 / (1 - rate) folded into the values) or None -> [B, A, L, L] in the compute dtype; the
    gradient reaches the scores only (the mask is a constant of the batch)."""

    @tf.custom_gradient
    def run(scores):
        out, probs = _attention_forward_xla(scores, mask_adder, keep)
        return out, lambda dout: _attention_backward_xla(dout, probs, keep)

    return run(scores)


# --- float32 logits: a bias added to a matmul's output in the compute dtype -----------------------

def _bias_float32_forward(y, bias):
    return tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)


def _bias_float32_backward(dout, y, bias):
    rows = tf.reshape(dout, [-1, tf.shape(dout)[-1]])  # [.., V] -> [rows, V]
    return tf.cast(dout, y.dtype), tf.cast(tf.reduce_sum(rows, 0), bias.dtype)


_bias_float32_forward_xla = _compiled(_bias_float32_forward)
_bias_float32_backward_xla = _compiled(_bias_float32_backward)


@tf.custom_gradient
def bias_float32(y, bias):
    """float32(y) + bias, y [.., V] in the compute dtype (the MLM head's logits), bias [V]:
    one pass each way instead of a cast and an add (and, backward, a column sum and a cast)
    over [B, N, V] float32."""
    return (_bias_float32_forward_xla(y, bias),
            lambda dout: _bias_float32_backward_xla(dout, y, bias))


# --- cross-entropy over the vocabulary ----------------------------------------------------------

def _cross_entropy_forward(logits, ids):
    top = tf.reduce_max(logits, -1)  # [..]
    log_total = top + tf.math.log(tf.reduce_sum(tf.exp(logits - top[..., None]), -1))
    return log_total - tf.gather(logits, ids, batch_dims=len(ids.shape)), log_total


def _cross_entropy_backward(logits, ids, log_total, dce):
    probs = tf.exp(logits - log_total[..., None])  # softmax, [.., V]
    return (probs - tf.one_hot(ids, tf.shape(logits)[-1])) * dce[..., None]


_cross_entropy_forward_xla = _compiled(_cross_entropy_forward)
_cross_entropy_backward_xla = _compiled(_cross_entropy_backward)


def sparse_cross_entropy(logits, ids):
    """`tf.nn.sparse_softmax_cross_entropy_with_logits` for float32 logits [.., V] and int ids
    [..] in range -> [..]. TF's kernel makes several passes over the logits and writes their
    gradient at every call, evaluation included; here the forward is one pass and the gradient
    one more, only when asked for (forward+backward on [32, 20, 30522]: 36 against 96 ms on 2
    CPU cores, bench/results/kernels.md)."""
    ids = tf.cast(ids, tf.int32)

    @tf.custom_gradient
    def run(logits):
        ce, log_total = _cross_entropy_forward_xla(logits, ids)
        return ce, lambda dce: _cross_entropy_backward_xla(logits, ids, log_total, dce)

    return run(logits)
