"""A pretraining checkpoint with some of the discriminator's variables drawn afresh.

Loads a pretraining run's latest checkpoint, builds the same model from random weights (the
model's own initializers, --seed), copies the fresh values into every discriminator variable
whose path matches --pattern (a regular expression), and writes the result as a new run
directory (config.json + checkpoint) that fine-tuning takes like any other. --mix below 1
interpolates between the pretrained and the fresh values instead. Used to find which
part of a briefly pretrained encoder makes it fine-tune worse than random weights.

    .venv/bin/python experiments/rerandomize.py --checkpoint runs/demo/pretrain \
        --pattern '/(query|key)/' --output_dir runs/rerandomized_qk
"""

from __future__ import annotations

import argparse
import os
import re

import keras
import tensorflow as tf

from electra_tf.checkpoints import load_pretrainer
from electra_tf.models import build_pretrainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a pretraining run's model_dir")
    p.add_argument("--pattern", required=True,
                   help="regex on variable paths, e.g. '/(query|key)/', 'layer_norm', 'layer_3/'")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mix", type=float, default=1.0,
                   help="1: the fresh values; 0 < m < 1: (1 - m) x pretrained + m x fresh")
    a = p.parse_args()
    model = load_pretrainer(a.checkpoint)
    keras.utils.set_random_seed(a.seed)
    fresh = build_pretrainer(model.config)
    chosen = [(variable, new) for variable, new in zip(model.weights, fresh.weights)
              if "/discriminator/" in variable.path and re.search(a.pattern, variable.path)]
    if not chosen:
        raise SystemExit(f"--pattern={a.pattern!r} matches no discriminator variable")
    for variable, new in chosen:
        variable.assign((1 - a.mix) * variable + a.mix * new)
    os.makedirs(a.output_dir, exist_ok=True)
    with open(os.path.join(a.output_dir, "config.json"), "w") as f:
        f.write(model.config.to_json())
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), a.output_dir, 1)
    manager.save()
    print(f"{len(chosen)} variables drawn afresh -> {a.output_dir}:",
          *(variable.path for variable, _ in chosen), sep="\n  ")


if __name__ == "__main__":
    main()
