"""Shared benchmark helpers: the machine's measured matmul peak and JSON output."""

from __future__ import annotations

import json
import statistics
import time

import tensorflow as tf

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)


def matmul_peak_gflops(dtype: tf.DType, n: int = 2048, repeats: int = 10) -> float:
    """Measured dense matmul throughput (GFLOP/s) of this CPU for `dtype`, median of repeats."""
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    mm = tf.function(lambda x: tf.matmul(x, x))
    mm(a).numpy()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        mm(a).numpy()
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)
