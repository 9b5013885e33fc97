"""Pretraining runs side by side: the eval metrics each logged (TensorBoard `eval/` events) at
every eval step, and the train-side throughput and row fill of its last logging window.

    .venv/bin/python experiments/compare_runs.py --run authors=runs/pre_authors \
        --run packed=runs/pre_packed --out experiments/results/packing.json
"""

from __future__ import annotations

import argparse
import glob
import json
from collections import defaultdict

import tensorflow as tf

from electra_tf.machine import describe

KEYS = ("mlm_loss", "mlm_accuracy", "disc_loss", "disc_auc", "disc_base_ratio", "row_fill")


def scalars(directory: str) -> dict[int, dict[str, float]]:
    """{step: {tag: value}} of every scalar summary under `directory`."""
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for path in sorted(glob.glob(f"{directory}/events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                out[event.step][value.tag] = float(tf.make_ndarray(value.tensor))
    return dict(sorted(out.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, help="name=model_dir")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    runs = {}
    for spec in a.run:
        name, directory = spec.split("=", 1)
        with open(f"{directory}/config.json") as f:
            config = json.load(f)
        train = scalars(f"{directory}/train")
        last = train[max(train)] if train else {}
        runs[name] = {
            "model_dir": directory, "config": config,
            "eval": {step: {k: round(v[k], 4) for k in KEYS if k in v}
                     for step, v in scalars(f"{directory}/eval").items()},
            "last_train_window": {k: round(last[k], 4) for k in
                                  ("sequences_per_second", "real_tokens_per_second", "row_fill")
                                  if k in last}}
    with open(a.out, "w") as f:
        json.dump({**describe(), "runs": runs}, f, indent=1)
    print("| run | step | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for name, run in runs.items():
        for step, values in run["eval"].items():
            print(f"| {name} | {step} | " + " | ".join(str(values.get(k, "")) for k in KEYS)
                  + " |")


if __name__ == "__main__":
    main()
