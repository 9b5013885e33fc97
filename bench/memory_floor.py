"""Benchmark: how fast the pretraining step could be, given this machine's memory speed.

The step's matmuls run as oneDNN kernels; everything between them (bias, dropout, residual,
LayerNorm, softmax, GELU, the heads' layout changes, the vocabulary-wide loss and sampling,
the optimizer) must at least read each matmul output and write each matmul input once, however
well it is fused. This counts those bytes for one step (forward and backward, from the
model's shapes and variables, `floor_bytes`), measures the memory speed (a streaming copy
of 4-64 MB by one and by two threads: the fastest reading), and prints what share of the
bfloat16 (or float32) matmul peak the step could reach if that traffic ran at memory speed and
the matmuls at a given share of the peak:

    share = FLOPs / (FLOPs / (peak x matmul share) + floor bytes / memory speed) / peak

A streaming copy is the best case; the kernels that would do the work move bytes slower. So the
same bound is also given at the speed of one compiled elementwise pass (`compiled_pass_gbs`:
an XLA-compiled a + b over the FFN's [B*L, F] activations in the compute dtype, two reads and a
write, as `electra_tf/fused.py` compiles its chains) and of TF's own add on the same tensors.

The floor assumes the best case everywhere: one pass per chain, dropout masks generated inside
the kernels (no mask traffic), softmax probabilities recomputed from the scores in the
backward, the cross-entropy, the sampling and the MLM accuracy in one pass over the logits.

    .venv/bin/python bench/memory_floor.py --precision mixed_bfloat16 --peak 579.4 \\
        --out bench/results/memory_floor.jsonl
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import append_record, matmul_peak_gflops, median_seconds, print_table, tree_revision  # noqa: E402

from electra_tf.config import get_config  # noqa: E402
from electra_tf.flops import electra_train_flops  # noqa: E402
from electra_tf.machine import describe  # noqa: E402
from electra_tf.models import build_pretrainer  # noqa: E402

MATMUL_SHARES = (0.67, 0.73, 0.85, 1.0)


def encoder_bytes(batch: int, length: int, hidden: int, ffn: int, heads: int, layers: int,
                  c: int) -> dict[str, int]:
    """Bytes per step of one encoder's chains, forward + backward; c = bytes per activation."""
    rows, scores = batch * length, batch * heads * length * length
    per_layer = {
        # [M, 3H] -> head-major q, k, v and back for the gradient: read + write, both ways
        "attention layout (heads split and merged)": 2 * 2 * (3 + 1) * rows * hidden * c,
        # forward: read scores, write probabilities; backward: read d probs and the scores
        # (the probabilities recomputed), write d scores
        "softmax": (2 + 3) * scores * c,
        # forward: read the branch and the residual, write the output and the pre-norm sum;
        # backward: read d out and that sum, write d branch and d residual (or read the branch
        # and the residual again instead of a saved sum: the same count); twice per layer
        "bias + dropout + residual + LayerNorm": 2 * (4 + 4) * rows * hidden * c,
        # forward: read, write; backward: read the input and d out, write d input
        "bias + GELU": (2 + 3) * rows * ffn * c,
    }
    return {k: layers * v for k, v in per_layer.items()}


def floor_bytes(size: str, batch: int, length: int, compute_bytes: int) -> dict[str, int]:
    """The step's unavoidable bytes outside the matmuls, by part."""
    cfg = get_config(size).replace(pretrain={"max_seq_length": length})
    m, slots = cfg.model, cfg.pretrain.num_predictions
    rows, c = batch * length, compute_bytes
    parts = {}
    for who, hidden, ffn, heads in (
            ("discriminator", m.hidden_size, m.intermediate_size, m.num_heads),
            ("generator", m.generator_hidden_size, m.generator_intermediate_size,
             m.generator_num_heads)):
        for k, v in encoder_bytes(batch, length, hidden, ffn, heads, m.num_layers, c).items():
            parts[f"{who}: {k}"] = v
        # the embeddings' sum + LayerNorm (+ projection input) like one add + LayerNorm
        parts[f"{who}: embeddings"] = 8 * rows * m.embedding_size * c
    # the discriminator head's GELU over [M, H]
    parts["discriminator head"] = 5 * rows * m.hidden_size * c
    # logits [B N, V] as the matmul writes them: forward one pass (loss, sampling, accuracy),
    # backward one read (the softmax recomputed) and one write of d logits
    parts["MLM logits"] = 3 * batch * slots * m.vocab_size * c
    # the gradients' global norm (one read) and Adam with decoupled weight decay (read the
    # variable, both moments and the gradient, write the variable and both moments), float32
    model = build_pretrainer(cfg)
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    parts["optimizer (clip + Adam)"] = 8 * params * 4
    return parts


def memory_speed_gbs(repeats: int = 15) -> dict[str, float]:
    """Streaming copy speed in GB/s (bytes read + written) of arrays the size of the step's
    activations, by one thread and by two threads copying a half each."""
    speeds = {}
    for mbytes in (4, 16, 64):
        n = mbytes * 2**20 // 4
        a, out = np.random.rand(n).astype(np.float32), np.empty(n, np.float32)
        halves = [(a[:n // 2], out[:n // 2]), (a[n // 2:], out[n // 2:])]
        with ThreadPoolExecutor(2) as pool:
            for threads, pairs in ((1, [(a, out)]), (2, halves)):
                seconds = median_seconds(repeats, _copy_pairs, pool, pairs)
                speeds[f"{mbytes} MB, {threads} thread(s)"] = round(2 * n * 4 / seconds / 1e9, 1)
    return speeds


def _copy_pairs(pool: ThreadPoolExecutor, pairs) -> None:
    """Copies each (source, destination) pair: one in this thread, several on the pool."""
    if len(pairs) == 1:
        np.copyto(pairs[0][1], pairs[0][0])
    else:
        list(pool.map(lambda pair: np.copyto(pair[1], pair[0]), pairs))


def compiled_pass_gbs(rows: int, width: int, dtype: tf.DType,
                      repeats: int = 30) -> dict[str, float]:
    """GB/s (two reads and a write) of one elementwise pass a + b over [rows, width] in dtype:
    XLA-compiled, and TF's own kernel; median of repeats."""
    a = tf.cast(tf.random.normal([rows, width]), dtype)  # [M, F]
    b = tf.cast(tf.random.normal([rows, width]), dtype)
    speeds = {}
    for name, fn in (("compiled (XLA)", tf.function(lambda x, y: x + y, jit_compile=True)),
                     ("TF kernel", tf.function(lambda x, y: x + y))):
        for _ in range(3):
            fn(a, b)
        seconds = median_seconds(repeats, fn, a, b)  # eager calls return when the op has run
        speeds[name] = round(3 * rows * width * dtype.size / seconds / 1e9, 1)
    return speeds


def step_share(flops: float, peak_gflops: float, matmul_share: float, floor_bytes: float,
               gbs: float) -> float:
    """The step's share of the peak when its matmuls run at matmul_share of it and the rest
    moves floor_bytes at gbs GB/s."""
    peak = peak_gflops * 1e9
    return flops / (flops / (peak * matmul_share) + floor_bytes / (gbs * 1e9)) / peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", default="small")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--precision", choices=["mixed_bfloat16", "float32"],
                   default="mixed_bfloat16")
    p.add_argument("--peak", type=float, default=None,
                   help="the matmul peak (GFLOP/s) to divide by, e.g. the one a step record "
                        "used; default: measured here, median of 3")
    p.add_argument("--out", default=None, help="append the result as one JSON line")
    a = p.parse_args()
    dtype = tf.bfloat16 if a.precision == "mixed_bfloat16" else tf.float32
    parts = floor_bytes(a.size, a.batch, a.seq, dtype.size)
    total = sum(parts.values())
    cfg = get_config(a.size).replace(pretrain={"max_seq_length": a.seq})
    flops = electra_train_flops(cfg.model, a.batch, a.seq, cfg.pretrain.num_predictions)
    peak = a.peak or statistics.median(matmul_peak_gflops(dtype) for _ in range(3))
    speeds = memory_speed_gbs()
    speed = max(speeds.values())
    floor_ms = total / speed / 1e6
    passes = compiled_pass_gbs(a.batch * a.seq, cfg.model.intermediate_size, dtype)
    pass_speed = passes["compiled (XLA)"]
    bound = {f"{s:.2f}": round(step_share(flops, peak, s, total, speed), 3)
             for s in MATMUL_SHARES}
    bound_compiled = {f"{s:.2f}": round(step_share(flops, peak, s, total, pass_speed), 3)
                      for s in MATMUL_SHARES}
    cpu = describe()
    record = {"date": cpu["date"], "cpu": cpu["cpu"], "avx512_bf16": cpu["avx512_bf16"],
              "amx_bf16": cpu["amx_bf16"], "code": tree_revision(), "size": a.size,
              "batch": a.batch, "seq": a.seq, "precision": a.precision,
              "step_gflop": round(flops / 1e9, 1), "peak_gflops": round(peak, 1),
              "peak_measured_here": a.peak is None,
              "memory_gbs": speeds, "floor_mb": round(total / 1e6),
              "floor_mb_by_part": {k: round(v / 1e6, 1) for k, v in parts.items()},
              "floor_ms": round(floor_ms, 1),
              "share_of_peak_at_matmul_share": bound,
              "compiled_pass_gbs": passes,
              "floor_ms_at_compiled_pass": round(total / pass_speed / 1e6, 1),
              "share_of_peak_at_matmul_share_compiled_pass": bound_compiled}
    print(f"{a.size} B={a.batch} L={a.seq} {a.precision}: {record['step_gflop']} GFLOP, "
          f"peak {record['peak_gflops']} GFLOP/s, memory {speeds} GB/s, "
          f"one elementwise pass {passes} GB/s")
    print_table(("part", "MB per step"), [
        *((k, f"{v / 1e6:.1f}") for k, v in sorted(parts.items(), key=lambda kv: -kv[1])),
        ("total", f"{total / 1e6:.0f} ({floor_ms:.0f} ms at {speed} GB/s, "
                  f"{total / pass_speed / 1e6:.0f} ms at {pass_speed} GB/s)")])
    print()
    print_table(("matmuls at this share of the peak",
                 f"best share of the peak for the step, rest at copy speed ({speed} GB/s)",
                 f"rest at a compiled pass's speed ({pass_speed} GB/s)"),
                [(f"{float(s):.0%}", f"{b:.1%}", f"{bound_compiled[s]:.1%}")
                 for s, b in bound.items()])
    if a.out:
        append_record(a.out, record)


if __name__ == "__main__":
    main()
