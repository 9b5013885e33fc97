"""Benchmark: one full ELECTRA pretraining step of electra-tf (generator, sampling,
discriminator, losses, gradients, clipping, optimizer update), as `PretrainStep` runs it.

Same workload as the peers in ../shared/peers: ELECTRA-Small (1/4 generator), V=30522,
N=int((0.15 + 0.005) * L) masked slots, random ids. With --data, batches come from TFRecord
shards through the real input pipeline (parse, dynamic masking) instead: the full training
step. Prints one JSON line; real_tokens_per_s counts only non-padding positions (row_fill: their
share of the batch's positions, 1.0 for the random batch).

    .venv/bin/python bench/pretrain_step.py --batch 32 --seq 128 --precision mixed_bfloat16
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as electra_tf sets it (imported after TF)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import emit, matmul_peak_gflops  # noqa: E402

import electra_tf  # noqa: E402, F401  (before TF: sets its oneDNN option)
from electra_tf.flops import electra_train_flops  # noqa: E402


def build_step(a: argparse.Namespace, package: str = "electra_tf"):
    """(PretrainStep, its input iterator, config) for --size/--batch/--seq/--precision/
    --jit_compile, fed an in-memory batch of random ids or, with --data, the real pipeline.

    `package`: the importable name of the electra_tf code to build it with (bench/step_ab.py
    builds another revision's copy beside the working tree's)."""
    m = {name: importlib.import_module(f"{package}.{name}") for name in (
        "config", "data.masking", "data.pipeline", "models", "optimization", "tokenization",
        "training")}
    keras.mixed_precision.set_global_policy(a.precision)
    cfg = m["config"].get_config(a.size).replace(
        pretrain={"max_seq_length": a.seq, "batch_size": a.batch})
    n = cfg.pretrain.num_predictions
    ids = tf.random.stateless_uniform((a.batch, a.seq), [0, 0], 5, cfg.model.vocab_size,
                                      dtype=tf.int32)
    ids = tf.concat([tf.fill([a.batch, 1], 101), ids[:, 1:-1], tf.fill([a.batch, 1], 102)], 1)
    raw = {"input_ids": ids, "input_mask": tf.ones_like(ids), "segment_ids": tf.zeros_like(ids)}
    batch = m["data.masking"].mask_batch(
        raw, tf.constant([0, 0]), mask_prob=cfg.pretrain.mask_prob, num_predictions=n,
        mask_id=103, special_ids=(101, 102, 103))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = m["models"].build_pretrainer(cfg)
        opt = m["optimization"].pretraining_optimizer(5e-4, 10_000, 100)
        step = m["training"].PretrainStep(model, opt, cfg.pretrain, strategy,
                                          jit_compile=a.jit_compile)
    data = tf.data.Dataset.from_tensors(batch).repeat()
    if a.data:
        vocab = m["tokenization"].load_vocab(a.vocab, cfg.model.vocab_size)
        spec = m["data.pipeline"].MaskingSpec.from_config(cfg, vocab)
        data = m["data.pipeline"].pretraining_dataset(a.data, a.batch, a.seq, spec)
    return step, iter(strategy.experimental_distribute_dataset(data)), cfg


def arguments(description: str) -> argparse.ArgumentParser:
    """The step's flags, shared with bench/profile_step.py."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--size", default="small")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    p.add_argument("--jit_compile", action="store_true")
    p.add_argument("--data", default=None, help="shard pattern: stream the real input pipeline")
    p.add_argument("--vocab", default=None, help="vocab.txt of --data (for the [MASK] id)")
    return p


def main() -> None:
    p = arguments(__doc__)
    p.add_argument("--peak", action="store_true", help="also measure the matmul peak")
    a = p.parse_args()

    step, iterator, cfg = build_step(a)
    n = cfg.pretrain.num_predictions
    one = tf.constant(1)

    t = time.perf_counter()
    float(step.train(iterator, one)["loss"])
    first = time.perf_counter() - t
    times, real_tokens = [], 0.0
    for _ in range(a.steps):
        t = time.perf_counter()
        sums = step.train(iterator, one)
        float(sums["loss"])
        times.append(time.perf_counter() - t)
        real_tokens += float(sums["input_tokens"])  # non-padding positions of the batch
    med = statistics.median(times)
    fill = real_tokens / (a.steps * a.batch * a.seq)
    flops = electra_train_flops(cfg.model, a.batch, a.seq, n)
    record = {"impl": "electra-tf", "precision": a.precision, "jit_compile": a.jit_compile,
              "batch": a.batch, "seq": a.seq, "first_step_s": round(first, 2),
              "median_step_s": round(med, 4), "seq_per_s": round(a.batch / med, 2),
              "real_tokens_per_s": round(fill * a.batch * a.seq / med), "row_fill": round(fill, 3),
              "step_gflop": round(flops / 1e9, 1), "model_gflops": round(flops / med / 1e9, 1),
              "input": "tfrecord pipeline" if a.data else "in-memory batch"}
    if a.peak:
        record["peak_gflops"] = round(matmul_peak_gflops(
            tf.bfloat16 if a.precision == "mixed_bfloat16" else tf.float32), 1)
        record["mfu"] = round(record["model_gflops"] / record["peak_gflops"], 3)
    emit(record)


if __name__ == "__main__":
    main()
