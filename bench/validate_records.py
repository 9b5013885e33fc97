"""Benchmark: the pretraining input's up-front schema check over many shards.

Writes N small shards (50 records of L=128 each) and times `pipeline.validate_records` (the
first record of every file, one parallel tf.data pass) against reading each file's first
record through its own eager dataset, as the check did before it covered every file.

    .venv/bin/python bench/validate_records.py [--files 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import emit  # noqa: E402

from electra_tf.data import pipeline, records  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    length = 128
    record = records.encode_examples(
        {k: np.ones((1, length), np.int64) for k in pipeline.FEATURE_NAMES})[0]
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i in range(a.files):
            files.append(f"{d}/part-{i:05d}")
            with tf.io.TFRecordWriter(files[-1]) as w:
                for _ in range(50):
                    w.write(record)
        for _ in range(a.rounds):  # alternate the two ways
            t = time.perf_counter()
            pipeline.validate_records(files, length)
            parallel = time.perf_counter() - t
            t = time.perf_counter()
            for f in files:
                next(iter(tf.data.TFRecordDataset(f).take(1)))
            one_by_one = time.perf_counter() - t
            emit({"files": a.files, "validate_records_s": round(parallel, 2),
                  "one_dataset_per_file_s": round(one_by_one, 2), "cpus": os.cpu_count()})


if __name__ == "__main__":
    main()
