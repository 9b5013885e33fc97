"""Shared benchmark helpers: the machine's measured matmul peak and JSON output."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time

import tensorflow as tf

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)
from electra_tf.machine import describe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def matmul_peak_gflops(dtype: tf.DType, n: int = 2048, repeats: int = 10) -> float:
    """Measured dense matmul throughput (GFLOP/s) of this CPU for `dtype`, median of repeats."""
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    mm = tf.function(lambda x: tf.matmul(x, x))
    mm(a).numpy()
    return 2 * n ** 3 / median_seconds(repeats, lambda x: mm(x).numpy(), a) / 1e9


def median_seconds(repeats: int, fn, *args) -> float:
    """The median wall time of `repeats` calls fn(*args)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def tree_revision() -> str:
    """The working tree's commit, "+changes" when it differs from it."""
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "diff", "--quiet", "HEAD", "--", "electra_tf"])
    return commit + ("+changes" if dirty.returncode else "")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def append_record(path: str, record: dict) -> None:
    """Appends `record` to the JSON-lines file `path`."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def print_table(headers: tuple[str, ...], rows) -> None:
    """Prints rows (tuples of cells) as a Markdown table."""
    print("| " + " | ".join(headers) + " |\n|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def machine_record() -> dict:
    """{"machine": date, CPU and its bfloat16 flags, cores; both measured matmul peaks}."""
    return {"machine": describe(),
            "peak_gflops": {"float32": round(matmul_peak_gflops(tf.float32), 1),
                            "bfloat16": round(matmul_peak_gflops(tf.bfloat16), 1)}}


if __name__ == "__main__":  # the line bench/run_pretrain_step.sh starts its records with
    emit(machine_record())
