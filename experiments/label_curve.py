"""Pretrained vs random weights as the number of labelled examples grows.

For each label count and seed, the same random subset of the training file (drawn by the seed,
so every arm sees the same examples: a paired comparison) fine-tunes each arm: a pretraining
run's discriminator, or random weights of the same shape. Few labels get more epochs so every
run takes at least --min_steps optimizer steps (a few dozen steps would leave every arm near
chance): epochs = max(--epochs, min_steps x batch / count). Dev accuracy is read for every run;
the results file holds every run, the medians and spreads, and a PNG plots them.

    .venv/bin/python experiments/label_curve.py --task_dir demo_data/sentiment \
        --vocab_file runs/demo/data/vocab.txt --arm demo=runs/demo/pretrain \
        --arm random --counts 250,500,1000,2000,all --seeds 5 --embedding_directions_removed 1 \
        --work_dir runs/label_curve_en --out experiments/results/label_curve_en

A rerun skips the runs already in --work_dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np
from exp_common import sentiment_spec

from electra_tf.checkpoints import resolve_checkpoint
from electra_tf.config import ElectraConfig, get_config
from electra_tf.finetuning import FinetuneConfig, run
from electra_tf.machine import describe


def subset(task_dir: str, count: int | None, seed: int, work: str) -> str:
    """A task directory whose train.tsv holds `count` random training rows (all: None)."""
    out = f"{work}/data_{count or 'all'}_{seed}"
    if os.path.exists(f"{out}/train.tsv"):
        return out
    os.makedirs(out, exist_ok=True)
    with open(f"{task_dir}/train.tsv", encoding="utf-8") as f:
        rows = [line for line in f if line.strip()]
    if count is not None:
        pick = np.random.default_rng(seed).permutation(len(rows))[:count]
        rows = [rows[i] for i in sorted(pick)]
    with open(f"{out}/train.tsv", "w", encoding="utf-8") as f:
        f.writelines(rows)
    for split in ("dev", "test"):
        os.symlink(os.path.abspath(f"{task_dir}/{split}.tsv"), f"{out}/{split}.tsv")
    return out


def model_config(arms: dict[str, str], vocab_size: int):
    """The shape of the first pretrained arm (random arms take it too), else tiny's."""
    for init in arms.values():
        if init:
            prefix = resolve_checkpoint(init)
            with open(f"{os.path.dirname(prefix)}/config.json") as f:
                return ElectraConfig.from_json(f.read()).model
    return dataclasses.replace(get_config("tiny").model, vocab_size=vocab_size)


def one_run(a, arm: str, init: str, count: int | None, seed: int, model, spec) -> dict:
    name = f"{arm}_{count or 'all'}_{seed}"
    path = f"{a.work_dir}/{name}/results.json"
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    data_dir = subset(a.task_dir, count, seed, a.work_dir)
    with open(f"{data_dir}/train.tsv", encoding="utf-8") as f:
        examples = sum(1 for _ in f)
    epochs = max(a.epochs, a.min_steps * a.batch_size / examples)
    cfg = FinetuneConfig(
        task=spec, data_dir=data_dir, vocab_file=a.vocab_file, output_dir=f"{a.work_dir}/{name}",
        model=model, init_checkpoint=init, lower_case=not a.cased,
        max_seq_length=a.max_seq_length, batch_size=a.batch_size, eval_batch_size=256,
        learning_rate=a.learning_rate, epochs=epochs, layerwise_decay=a.layerwise_decay,
        reinit_layers=a.reinit_layers if init else 0, num_seeds=1, seed=seed,
        embedding_directions_removed=a.embedding_directions_removed if init else 0,
        adam_bias_correction=a.adam_bias_correction, warmup_proportion=a.warmup_proportion,
        steps_per_loop=100, log_every=10_000, save_every=100_000)
    start = time.time()
    result = run(cfg)
    result["seconds"] = time.time() - start
    return result


def plot(summary: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, rows in summary.items():
        xs = [r["examples"] for r in rows]
        ax.plot(xs, [r["median"] for r in rows], marker="o", label=arm)
        ax.fill_between(xs, [r["min"] for r in rows], [r["max"] for r in rows], alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("dev accuracy (median, min-max of seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task_dir", required=True, help="train/dev/test.tsv: label<TAB>text")
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--arm", action="append", required=True,
                   help="name=pretraining run dir, or 'random' (repeat the flag)")
    p.add_argument("--counts", default="250,500,1000,2000,all")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=3e-4)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--min_steps", type=int, default=200)
    p.add_argument("--layerwise_decay", type=float, default=1.0)
    p.add_argument("--reinit_layers", type=int, default=0)
    p.add_argument("--embedding_directions_removed", type=int, default=0,
                   help="for the pretrained arms (run_finetuning.py's flag)")
    p.add_argument("--adam_bias_correction", action="store_true",
                   help="Adam with bias correction in fine-tuning (default: the authors' without)")
    p.add_argument("--warmup_proportion", type=float, default=0.1)
    p.add_argument("--cased", action="store_true")
    p.add_argument("--work_dir", required=True)
    p.add_argument("--out", required=True, help="writes <out>.json and <out>.png")
    a = p.parse_args()
    arms = dict(arm.split("=", 1) if "=" in arm else (arm, "") for arm in a.arm)
    counts = [None if c == "all" else int(c) for c in a.counts.split(",")]
    with open(a.vocab_file, encoding="utf-8") as f:
        vocab_size = sum(1 for line in f if line.strip())
    model = model_config(arms, vocab_size)
    spec = sentiment_spec()
    os.makedirs(a.work_dir, exist_ok=True)
    runs, summary = [], {arm: [] for arm in arms}
    for count in counts:
        for arm, init in arms.items():
            accuracies = []
            for seed in range(a.seeds):
                result = one_run(a, arm, init, count, seed, model, spec)
                accuracy = result["median"]["accuracy"]
                accuracies.append(accuracy)
                runs.append({"arm": arm, "count": count or "all", "seed": seed,
                             "dev_accuracy": accuracy, "train_steps": result["train_steps"]})
                print(json.dumps(runs[-1]), flush=True)
            with open(f"{a.work_dir}/{arm}_{count or 'all'}_0/finetune_config.json") as f:
                used = json.load(f)
            examples = count or _rows(f"{a.task_dir}/train.tsv")
            summary[arm].append({"count": count or "all", "examples": examples,
                                 "median": float(np.median(accuracies)),
                                 "min": float(min(accuracies)), "max": float(max(accuracies)),
                                 "epochs": used["epochs"]})
    out = {**describe(), "arguments": vars(a), "arms": arms,
           "summary": summary, "runs": runs}
    with open(f"{a.out}.json", "w") as f:
        json.dump(out, f, indent=1)
    plot(summary, f"{a.out}.png", os.path.basename(a.task_dir.rstrip("/")))
    for arm, rows in summary.items():
        print(arm, "  ".join(f"{r['count']}: {r['median']:.3f} [{r['min']:.3f}-{r['max']:.3f}]"
                             for r in rows))


def _rows(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


if __name__ == "__main__":
    main()
