"""Benchmark: pretraining input pipeline throughput (masked batches/s) against what ELECTRA-Small
consumes in training on this machine.

Builds shards from the corpus with our builder (or reuses --data_dir), then pulls batches of
B=128, L=128 through `pretraining_dataset` (file shuffle, interleave, record shuffle, batch,
batched parse, dynamic masking, prefetch) on all cores and reports batches/s and sequences/s.
The consumption side is the measured float32 training speed of Small in
bench/results/pretrain_step.json (sequences/s).

    .venv/bin/python bench/pipeline.py --corpus ../shared/data/corpus/web.txt \
        --vocab ../shared/data/vocab/corpus-wordpiece-30522.txt
Appends one JSON line to bench/results/pipeline.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import electra_tf  # noqa: E402, F401  (before TF: sets its oneDNN option)
from electra_tf import tokenization  # noqa: E402
from electra_tf.config import get_config  # noqa: E402
from electra_tf.data import pipeline, preprocess  # noqa: E402


def consumption(results: str) -> float | None:
    """Small's measured float32 training speed (sequences/s), if the step benchmark ran."""
    if not os.path.exists(results):
        return None
    with open(results) as f:
        for row in json.load(f)["medians"]:
            if row["impl"] == "electra-tf" and row["precision"] == "float32":
                return row["seq_per_s"]
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", default="../shared/data/corpus/web.txt")
    p.add_argument("--vocab", default="../shared/data/vocab/corpus-wordpiece-30522.txt")
    p.add_argument("--data_dir", default=None, help="existing shards (skips the build)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench/results/pipeline.jsonl")
    a = p.parse_args()
    vocab = tokenization.load_vocab(a.vocab)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = a.data_dir or tmp
        if not a.data_dir:
            preprocess.build([a.corpus], vocab, tmp, preprocess.BuildOptions(
                max_seq_length=a.seq, num_shards=8))
        cfg = get_config("small").replace(pretrain={"max_seq_length": a.seq})
        spec = pipeline.MaskingSpec.from_config(cfg, vocab)
        ds = pipeline.pretraining_dataset(f"{data_dir}/pretrain_data*", a.batch, a.seq, spec)
        it = iter(ds)
        for _ in range(10):  # warm up: fill shuffle buffer and prefetch
            next(it)
        rates = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            for _ in range(a.batches):
                next(it)["input_ids"].numpy()
            rates.append(a.batches / (time.perf_counter() - t))
    rate = statistics.median(rates)
    need = consumption("bench/results/pretrain_step.json")
    record = {"impl": "electra-tf pretraining_dataset", "batch": a.batch, "seq": a.seq,
              "batches_per_s": round(rate, 2), "seq_per_s": round(rate * a.batch),
              "small_consumes_seq_per_s": need,
              "ratio_to_small_training": round(rate * a.batch / need, 1) if need else None,
              "cpus": os.cpu_count()}
    print(json.dumps(record), flush=True)
    with open(a.out, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
