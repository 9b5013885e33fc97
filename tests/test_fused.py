"""The block's compiled elementwise kernels compute the unfused formulas, values and gradients,
and the training block (only it) runs them."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import fused, rng
from electra_tf.layers import TransformerBlock, _layer_norm, _select, gelu

# float32: the same math in another order; bfloat16: both round the float32 result once, so
# they differ by at most one bfloat16 step (2^-7 relative) where the float32 values straddle a
# rounding boundary
TOLERANCE = {"float32": 2e-5, "bfloat16": 2.0 ** -7}


def _close(got, want, dtype, name):
    got, want = tf.cast(got, tf.float32).numpy(), tf.cast(want, tf.float32).numpy()
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max(), err_msg=name)


def _values_and_grads(fn, args, dy):
    with tf.GradientTape() as tape:
        tape.watch(args)
        y = fn(*args)
    return [y] + tape.gradient(y, args, output_gradients=dy)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_bias_gelu_is_gelu_of_the_biased_rows(dtype):
    y = tf.cast(tf.random.stateless_normal([64, 40], [1, 2]) * 3, dtype)
    bias = tf.cast(tf.random.stateless_normal([40], [1, 3]), dtype)
    dy = tf.cast(tf.random.stateless_normal([64, 40], [1, 4]), dtype)
    got = _values_and_grads(fused.bias_gelu, [y, bias], dy)
    want = _values_and_grads(lambda y, b: gelu(y + b), [y, bias], dy)
    assert [t.dtype for t in got] == [tf.as_dtype(dtype)] * 3
    for name, g, w in zip(("value", "d y", "d bias"), got, want):
        _close(g, w, dtype, name)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("rate", [0.0, 0.25])
def test_add_norm_is_layer_norm_of_residual_plus_dropped_branch(dtype, rate):
    m, h, eps = 48, 32, 1e-12
    y = tf.cast(tf.random.stateless_normal([m, h], [2, 1]), dtype)
    bias = tf.cast(tf.random.stateless_normal([h], [2, 2]), dtype)
    residual = tf.cast(tf.random.stateless_normal([m, h], [2, 3]) * 2 + 1, dtype)
    gamma = tf.random.stateless_normal([h], [2, 4])
    beta = tf.random.stateless_normal([h], [2, 5])
    dy = tf.cast(tf.random.stateless_normal([m, h], [2, 6]), dtype)
    keep = rng.keep_units([m, h], rate, tf.constant([5, 6])) if rate else None
    if keep is not None:
        assert not bool(tf.reduce_all(keep))  # something is dropped

    def reference(y, bias, residual, gamma, beta):
        branch = y + bias
        return _layer_norm(residual + (branch if keep is None else _select(branch, keep)),
                           gamma, beta, eps)

    def ours(y, bias, residual, gamma, beta):
        return fused.add_norm(y, bias, keep, residual, gamma, beta, eps)

    args = [y, bias, residual, gamma, beta]
    got, want = _values_and_grads(ours, args, dy), _values_and_grads(reference, args, dy)
    names = ("value", "d y", "d bias", "d residual", "d gamma", "d beta")
    for name, g, w in zip(names, got, want):
        assert g.dtype == w.dtype, name
        _close(g, w, dtype, name)


def _compiled_calls(fn) -> int:
    """How many XLA-compiled function calls the graph of `fn` holds, nested functions included."""
    graph = tf.function(fn).get_concrete_function().graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return sum(n.attr["_XlaMustCompile"].b for n in nodes if "_XlaMustCompile" in n.attr)


def test_only_the_training_block_runs_the_compiled_kernels():
    # inference (and so exported SavedModels) keeps plain TF ops: every runtime serves them
    block = TransformerBlock(16, 2, 24)
    x = tf.random.stateless_normal([3, 5, 16], [4, 4])
    adder = tf.zeros([3, 1, 1, 5])
    assert _compiled_calls(lambda: block(x, adder, training=False)) == 0
    seed = tf.constant([1, 2])

    def train():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = block(x, adder, training=True, seed=seed)
        return tape.gradient(y, x)

    assert _compiled_calls(train) > 0


def test_sparse_cross_entropy_is_tfs_values_and_gradient():
    logits = tf.random.stateless_normal([4, 6, 300], [3, 1]) * 4
    ids = tf.random.stateless_uniform([4, 6], [3, 2], 0, 300, dtype=tf.int32)
    dce = tf.random.stateless_uniform([4, 6], [3, 3])
    got = _values_and_grads(lambda x: fused.sparse_cross_entropy(x, ids), [logits], dce)
    want = _values_and_grads(
        lambda x: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=x),
        [logits], dce)
    for name, g, w in zip(("value", "d logits"), got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_bias_float32_is_cast_plus_bias(dtype):
    y = tf.cast(tf.random.stateless_normal([3, 4, 50], [6, 1]), dtype)
    bias = tf.random.stateless_normal([50], [6, 2])
    dout = tf.random.stateless_normal([3, 4, 50], [6, 3])
    got = _values_and_grads(fused.bias_float32, [y, bias], dout)
    want = _values_and_grads(lambda y, b: tf.cast(y, tf.float32) + b, [y, bias], dout)
    assert [t.dtype for t in got] == [tf.float32, tf.as_dtype(dtype), tf.float32]
    for name, g, w in zip(("value", "d y", "d bias"), got, want):
        _close(g, w, "float32", name)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_attention_probs_are_the_masked_softmax_dropped(dtype, rate):
    scores = tf.cast(tf.random.stateless_normal([2, 3, 7, 7], [7, 1]) * 3, dtype)
    adder = tf.constant([[[[0.0] * 5 + [-10000.0] * 2]], [[[0.0] * 7]]])  # [2, 1, 1, 7]
    dy = tf.cast(tf.random.stateless_normal([2, 3, 7, 7], [7, 2]), dtype)
    keep = rng.keep_units([2, 3, 7, 7], rate, tf.constant([7, 3])) if rate else None

    def reference(scores):
        probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32) + adder), dtype)
        return probs if keep is None else _select(probs, keep)

    got = _values_and_grads(lambda s: fused.attention_probs(s, adder, keep), [scores], dy)
    want = _values_and_grads(reference, [scores], dy)
    for name, g, w in zip(("value", "d scores"), got, want):
        assert g.dtype == w.dtype, name
        _close(g, w, dtype, name)


def test_kernels_take_tensors_of_unknown_shape():
    # the row sums are matmuls with a ones vector as long as the row: under a tf.function traced
    # without static shapes that length is only known when the function runs
    m, h = 12, 8
    y = tf.random.stateless_normal([m, h], [8, 1])
    bias, gamma, beta = (tf.random.stateless_normal([h], [8, i]) for i in (2, 3, 4))
    residual = tf.random.stateless_normal([m, h], [8, 5])
    scores = tf.random.stateless_normal([2, 3, 4, 4], [8, 6])
    adder = tf.zeros([2, 1, 1, 4])

    def both(y, bias, residual, gamma, beta, scores, adder):
        with tf.GradientTape() as tape:
            tape.watch([y, scores])
            out = fused.add_norm(y, bias, None, residual, gamma, beta, 1e-12)
            probs = fused.attention_probs(scores, adder, None)
            total = tf.reduce_sum(out * out) + tf.reduce_sum(probs * scores)
        return [out, probs, *tape.gradient(total, [y, scores])]

    args = [y, bias, residual, gamma, beta, scores, adder]
    unknown = tf.function(both, input_signature=[
        tf.TensorSpec([None] * len(a.shape), a.dtype) for a in args])
    for name, got, want in zip(("LayerNorm", "softmax", "d y", "d scores"), unknown(*args),
                               both(*args)):
        assert got.shape == want.shape, name
        _close(got, want, "float32", name)
