"""Benchmark: the encoder block's elementwise pieces, ours against the plain TF way, alternating.

Each case times forward and backward of one piece on the block's shapes (ELECTRA-Small,
B*L = 4096 rows): GELU (ours: the authors' erf form with the derivative written out; TF's
`tf.nn.gelu(approximate=False)`), the erf and erfc kernels alone, the LayerNorm (ours: closed-form
gradient; the moments form differentiated by TF), the dropout select, the dropout's mask
(the compiled hash of `rng.keep_units` / 16-bit Philox draws), a row sum in a compiled kernel
(a matmul with ones / XLA's reduction), the training block's
compiled chains (`electra_tf/fused.py`) against the same formulas in TF ops, the compiled GELU
backward against the same kernel with a cubic for its erf and exp and without its bias sum
(what the kernel's time is made of), the MLM
cross-entropy (compiled / TF's kernel) and the sampling (inverse CDF / the authors' Gumbel-max)
over [B, N, V] = [32, 20, 30522] logits. One call runs the piece
on 5 different inputs; the result is the median over rounds of per-input milliseconds, the two
variants alternating. Prints a Markdown table; --out appends JSON lines.

    .venv/bin/python bench/kernels.py --rounds 15 --out bench/results/kernels.jsonl
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402
from common import append_record, tree_revision  # noqa: E402

from electra_tf import fused, rng, sampling  # noqa: E402
from electra_tf.layers import _layer_norm, _select, gelu  # noqa: E402
from electra_tf.machine import describe  # noqa: E402

INPUTS = 5


def moments_layer_norm(x, gamma, beta, eps):
    """The LayerNorm as keras computes it, for TF to differentiate."""
    xf = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(xf, axes=[-1], keepdims=True)
    inv = tf.math.rsqrt(variance + eps) * gamma
    return tf.cast(xf * inv + (beta - mean * inv), x.dtype)


def forward_backward(fn, shape, dtype, params=(), out_shape=None):
    """A tf.function: fn's forward and backward on INPUTS random inputs of `shape`, with random
    gradients of fn's output (of `out_shape`, default `shape`)."""
    xs = [tf.cast(tf.random.stateless_normal(shape, [i, 0]), dtype) for i in range(INPUTS)]
    dys = [tf.cast(tf.random.stateless_normal(out_shape or shape, [i, 1]), dtype)
           for i in range(INPUTS)]

    @tf.function(autograph=False)
    def run():
        out = []
        for x, dy in zip(xs, dys):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x, *params)
            grads = tape.gradient(y, [x, *params], output_gradients=dy)
            out.extend(tf.reduce_sum(tf.cast(g[..., :1], tf.float32)) for g in grads)
        return tf.add_n(out)

    return run


def forward_only(fn, shape, dtype):
    xs = [tf.cast(tf.random.stateless_normal(shape, [i, 0]), dtype) for i in range(INPUTS)]
    return tf.function(lambda: tf.add_n([tf.reduce_sum(fn(x)[..., :1]) for x in xs]),
                       autograph=False)


def cases():
    """(name, shape, dtype, {variant: tf.function})."""
    h = tf.Variable(tf.ones([256])), tf.Variable(tf.zeros([256]))
    keep = tf.random.stateless_uniform([32, 4, 128, 128], [0, 2]) >= 0.1
    scale = tf.constant(1 / 0.9, tf.bfloat16)
    for dtype in (tf.bfloat16, tf.float32):
        yield ("GELU forward+backward", [4096, 1024], dtype, {
            "ours": forward_backward(gelu, [4096, 1024], dtype),
            "tf.nn.gelu exact": forward_backward(
                lambda x: tf.nn.gelu(x, approximate=False), [4096, 1024], dtype)})
    yield ("erf / erfc kernel", [4096, 1024], tf.float32, {
        "erf": forward_only(tf.math.erf, [4096, 1024], tf.float32),
        "erfc": forward_only(tf.math.erfc, [4096, 1024], tf.float32)})
    yield ("LayerNorm forward+backward", [4096, 256], tf.bfloat16, {
        "ours": forward_backward(lambda x, g, b: _layer_norm(x, g, b, 1e-12),
                                 [4096, 256], tf.bfloat16, h),
        "moments form": forward_backward(lambda x, g, b: moments_layer_norm(x, g, b, 1e-12),
                                         [4096, 256], tf.bfloat16, h)})
    yield ("dropout select forward", [32, 4, 128, 128], tf.bfloat16, {
        "where(keep, x, 0)": forward_only(lambda x: tf.where(keep, x, tf.zeros([], x.dtype)),
                                          [32, 4, 128, 128], tf.bfloat16),
        "where(keep, x * s, zeros_like)": forward_only(
            lambda x: tf.where(keep, x * scale, tf.zeros_like(x)), [32, 4, 128, 128],
            tf.bfloat16)})


def philox_keep(shape, rate, seed):
    """Dropout's kept units as TF's Philox kernel draws them: 16-bit draws (each 32-bit draw
    split in two) compared with rate * 2^16."""
    pairs = shape[:-1] + [(shape[-1] + 1) // 2]
    halves = tf.reshape(tf.bitcast(rng.bits(pairs, seed), tf.uint16), shape[:-1] + [-1])
    return halves[..., :shape[-1]] >= tf.constant(round(rate * 2**16), tf.uint16)


def dropout_masks():
    """Dropout's kept units on the attention's [B, A, L, L]: the compiled hash against
    16-bit Philox draws; each mask is counted whole so that neither is computed in part."""
    shape = [32, 4, 128, 128]
    seed = tf.Variable([3, 4])  # a constant seed would let grappler fold the draws
    count = lambda keep: tf.reduce_sum(tf.cast(keep, tf.float32))  # noqa: E731
    yield ("dropout mask + count", shape, tf.bool, {
        "hash (rng.keep_units, compiled)": tf.function(lambda: tf.add_n(
            [count(rng.keep_units(shape, 0.1, seed + i)) for i in range(INPUTS)])),
        "16-bit Philox": tf.function(lambda: tf.add_n(
            [count(philox_keep(shape, 0.1, seed + i)) for i in range(INPUTS)]))})


def row_sums():
    """A row sum inside an XLA-compiled kernel, on the LayerNorm's and the attention softmax's
    rows: a matmul with ones (`fused._row_sum`) against XLA's reduction."""
    for shape in ([4096, 256], [32, 4, 128, 128]):
        xs = [tf.random.stateless_normal(shape, [i, 9]) for i in range(INPUTS)]

        def run(row_sum, xs=xs):
            kernel = tf.function(lambda x: x / row_sum(x * x), jit_compile=True,
                                 autograph=False)
            return tf.function(lambda: tf.add_n([tf.reduce_sum(kernel(x)[..., :1]) for x in xs]),
                               autograph=False)

        yield ("x / row sum of x^2, one compiled kernel", shape, tf.float32, {
            "dot with ones": run(fused._row_sum),
            "reduce_sum": run(lambda x: tf.reduce_sum(x, -1, keepdims=True))})


def compiled_chains():
    """The training block's chains as compiled kernels against the same formulas in TF ops."""
    keep = tf.random.stateless_uniform([4096, 256], [0, 4]) >= 0.1
    for dtype in (tf.bfloat16, tf.float32):
        bias = tf.Variable(tf.random.stateless_normal([1024], [0, 3]))
        yield ("bias + GELU forward+backward", [4096, 1024], dtype, {
            "compiled": forward_backward(fused.bias_gelu, [4096, 1024], dtype, (bias,)),
            "TF ops": forward_backward(lambda y, b: gelu(y + tf.cast(b, y.dtype)),
                                       [4096, 1024], dtype, (bias,))})
        params = (tf.Variable(tf.random.stateless_normal([256], [0, 5])),
                  tf.Variable(tf.cast(tf.random.stateless_normal([4096, 256], [0, 6]), dtype)),
                  tf.Variable(tf.ones([256])), tf.Variable(tf.zeros([256])))

        def tf_ops(y, bias, residual, gamma, beta):
            branch = _select(y + tf.cast(bias, y.dtype), keep)
            return _layer_norm(residual + branch, gamma, beta, 1e-12)

        yield ("bias + dropout + residual + LayerNorm forward+backward", [4096, 256], dtype, {
            "compiled": forward_backward(
                lambda y, b, r, g, be: fused.add_norm(y, b, keep, r, g, be, 1e-12),
                [4096, 256], dtype, params),
            "TF ops": forward_backward(tf_ops, [4096, 256], dtype, params)})


def _cubic_gelu_backward(y, bias, dout, bias_sum=True):
    """The compiled GELU backward's reads, writes and casts with a cubic for its slope."""
    u = tf.cast(y, tf.float32) + tf.cast(bias, tf.float32)  # [M, F]
    du = tf.cast(dout, tf.float32) * (((0.1 * u + 0.2) * u + 0.3) * u + 0.5)
    return tf.cast(du, y.dtype), tf.reduce_sum(du, 0) if bias_sum else bias


def gelu_backward_math():
    """What the compiled GELU backward's time is made of: the kernel; the same reads, writes,
    casts and bias sum with a cubic in place of its erf and exp; the cubic without the bias
    sum (the column sum over [M, F])."""
    bias = tf.random.stateless_normal([1024], [0, 3])
    dout = tf.cast(tf.random.stateless_normal([4096, 1024], [0, 4]), tf.bfloat16)
    cubic = tf.function(_cubic_gelu_backward, jit_compile=True, autograph=False)
    cubic_no_sum = tf.function(lambda *a: _cubic_gelu_backward(*a, bias_sum=False),
                               jit_compile=True, autograph=False)
    yield ("bias + GELU backward alone, compiled", [4096, 1024], tf.bfloat16, {
        "erf and exp": forward_only(lambda y: fused._bias_gelu_backward_xla(y, bias, dout)[0],
                                    [4096, 1024], tf.bfloat16),
        "a cubic (same bytes)": forward_only(lambda y: cubic(y, bias, dout)[0], [4096, 1024],
                                             tf.bfloat16),
        "a cubic, no bias sum": forward_only(lambda y: cubic_no_sum(y, bias, dout)[0],
                                             [4096, 1024], tf.bfloat16)})


def gumbel_max(logits, seed):
    """The authors' sampling: argmax of logits + Gumbel noise, a uniform per vocabulary entry."""
    uniform = rng.uniform(tf.shape(logits), seed)
    return tf.argmax(logits - tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9), -1,
                     output_type=tf.int32)


def vocabulary_pieces():
    """The MLM cross-entropy and the sampling over [B, N, V] = [32, 20, 30522] float32 logits."""
    shape = [32, 20, 30522]
    ids = tf.random.stateless_uniform(shape[:2], [0, 7], 0, shape[2], dtype=tf.int32)
    # a [4] seed as the training step's, in a variable: a constant seed would let grappler fold
    # the random numbers into the graph, which the step (seeded by its counter) cannot do
    seed = tf.Variable(rng.batch_seed(tf.constant([1, 2]), 0, shape[0]))
    yield ("MLM cross-entropy forward+backward", shape, tf.float32, {
        "compiled": forward_backward(lambda x: fused.sparse_cross_entropy(x, ids), shape,
                                     tf.float32, out_shape=shape[:2]),
        "TF's kernel": forward_backward(
            lambda x: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=x),
            shape, tf.float32, out_shape=shape[:2])})
    yield ("sampling, forward", shape, tf.float32, {
        "inverse CDF (compiled)": forward_only(lambda x: sampling.sample(x, seed.read_value()),
                                               shape, tf.float32),
        "Gumbel-max (authors')": forward_only(lambda x: gumbel_max(x, seed.read_value()), shape,
                                              tf.float32)})
    scores = [32, 4, 128, 128]
    adder = tf.zeros([32, 1, 1, 128])
    keep = tf.random.stateless_uniform(scores, [0, 8]) >= 0.1
    yield ("attention mask + softmax + dropout forward+backward", scores, tf.bfloat16, {
        "compiled": forward_backward(lambda s: fused.attention_probs(s, adder, keep), scores,
                                     tf.bfloat16),
        "TF ops": forward_backward(
            lambda s: _select(tf.cast(tf.nn.softmax(tf.cast(s, tf.float32) + adder), s.dtype),
                              keep), scores, tf.bfloat16)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out", default=None, help="append one JSON line per case")
    p.add_argument("--only", choices=["compiled", "gelu-math"], default=None,
                   help="compiled: only the compiled kernels (dropout masks, row sums, the "
                        "block's chains, the GELU backward's math, the MLM cross-entropy, the "
                        "sampling); gelu-math: only the GELU backward's math")
    a = p.parse_args()
    cpu = describe()
    print("| piece | shape | dtype | variant | ms per input (median) |\n|---|---|---|---|---|")
    if a.only == "gelu-math":
        selected = list(gelu_backward_math())
    else:
        selected = [*dropout_masks(), *row_sums(), *compiled_chains(), *gelu_backward_math(),
                    *vocabulary_pieces()]
        if not a.only:
            selected = [*cases(), *selected]
    for name, shape, dtype, variants in selected:
        times = {v: [] for v in variants}
        for fn in variants.values():
            fn().numpy()  # trace and warm up
        order = list(variants)
        for r in range(a.rounds):
            for v in order if r % 2 == 0 else order[::-1]:
                t = time.perf_counter()
                variants[v]().numpy()
                times[v].append((time.perf_counter() - t) * 1e3 / INPUTS)
        medians = {v: round(statistics.median(ts), 2) for v, ts in times.items()}
        for v, ms in medians.items():
            print(f"| {name} | {shape} | {dtype.name} | {v} | {ms} |")
        if a.out:
            record = {"date": cpu["date"], "cpu": cpu["cpu"], "avx512_bf16": cpu["avx512_bf16"],
                      "amx_bf16": cpu["amx_bf16"], "code": tree_revision(), "piece": name,
                      "shape": shape, "dtype": dtype.name, "rounds": a.rounds,
                      "ms_per_input": medians}
            append_record(a.out, record)


if __name__ == "__main__":
    main()
