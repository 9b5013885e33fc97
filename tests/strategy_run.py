"""Trains the tiny model a few steps under one strategy and saves per-step losses and weights.

Run by tests/test_strategies.py in fresh processes (logical devices and TF_CONFIG must be set
before TensorFlow starts). Every strategy sees the same global batches, split contiguously:
replica r of R gets rows [r * B/R, (r + 1) * B/R) of each global batch, so with the
batch-position-aware seeds of the training loop all strategies should compute the same step.

  python tests/strategy_run.py --strategy mirrored --steps 4 --out runs/strategy_mirrored.npz
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from helpers import CLS, MASK, SEP, packed_batch, tiny_config  # noqa: E402

import electra_tf  # noqa: E402, F401
from electra_tf import optimization  # noqa: E402
from electra_tf.data import masking  # noqa: E402
from electra_tf.distribute import get_strategy  # noqa: E402
from electra_tf.models import build_pretrainer  # noqa: E402
from electra_tf.training import PretrainStep  # noqa: E402

GLOBAL_BATCH, LENGTH = 8, 32


def global_batches(cfg, steps: int) -> dict[str, np.ndarray]:
    """[steps * B, ...] masked rows: step s is rows [s * B, (s + 1) * B)."""
    out = []
    for s in range(steps):
        raw = packed_batch(GLOBAL_BATCH, LENGTH, cfg.model.vocab_size, seed=s)
        out.append(masking.mask_batch(raw, tf.constant([1, s]), mask_prob=cfg.pretrain.mask_prob,
                                      num_predictions=cfg.pretrain.num_predictions,
                                      mask_id=MASK, special_ids=(CLS, SEP, MASK)))
    return {k: tf.concat([b[k] for b in out], 0) for k in out[0]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--strategy", required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--accumulation_steps", type=int, default=1)
    p.add_argument("--jit_compile", action="store_true")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.strategy == "mirrored":  # two replicas on this CPU
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = get_strategy(a.strategy)  # first: collectives must be set up before any op
    cfg = tiny_config(max_seq_length=LENGTH)
    rows = global_batches(cfg, a.steps)

    def dataset(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = ctx.get_per_replica_batch_size(GLOBAL_BATCH)
        return (tf.data.Dataset.from_tensor_slices(rows).batch(per_replica)
                .shard(ctx.num_input_pipelines, ctx.input_pipeline_id))

    keras.utils.set_random_seed(0)  # the same initial weights everywhere
    with strategy.scope():
        model = build_pretrainer(cfg)
        opt = optimization.pretraining_optimizer(1e-3, 100, 2)
        step = PretrainStep(model, opt, cfg.pretrain, strategy, a.accumulation_steps,
                            a.jit_compile)
    iterator = iter(strategy.distribute_datasets_from_function(dataset))
    losses = [{k: float(v) for k, v in step.train(iterator, tf.constant(1)).items()
               if k in ("loss", "mlm_loss", "disc_loss")} for _ in range(a.steps)]
    weights = {f"w{i}": v.numpy() for i, v in enumerate(model.trainable_variables)}
    np.savez(a.out, losses=json.dumps(losses), replicas=strategy.num_replicas_in_sync, **weights)


if __name__ == "__main__":
    main()
