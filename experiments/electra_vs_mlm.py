"""ELECTRA vs a masked LM vs no pretraining, at equal pretraining compute (issue: the paper's
central claim, at a 2-core budget).

Arms, all with the same encoder (the `tiny` size: 4 layers, hidden 128, embedding 64) and the
same data, batch, learning-rate schedule and fine-tuning:
  electra  replaced token detection (generator 1/4 wide, 85% [MASK] / 15% unchanged), S steps;
  mlm      the BERT objective on the discriminator-sized encoder (80/10/10 masking), as many
           steps as give the same FLOPs: S x electra_train_flops / mlm_train_flops
           (electra_tf/flops.py, the formula the benchmarks use);
  none     random initialisation.
Each is fine-tuned on ../shared/data/tasks/sentiment (generic TSV path, lr 3e-4, 3 epochs, no
layer-wise decay, as `make demo`) with 3 seeds; we report median dev and test accuracy.

Corpus: ../shared/data/corpus (web.txt, fortune.txt and the first 8 MB of gcide.txt), an 8,192
WordPiece vocabulary learned from it, sequences of 64 (the sentiment snippets fit in 64).

    .venv/bin/python experiments/electra_vs_mlm.py --work_dir runs/evm --electra_steps 3000

Writes experiments/results/electra_vs_mlm.{json,md,png}. Rerunning resumes: finished
pretraining runs and fine-tuning seeds are reused from --work_dir.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from pathlib import Path

import tensorflow as tf
from absl import logging
from exp_common import build_shards, sentiment_spec

from electra_tf import flops, pretraining, tokenization
from electra_tf.config import BERT_MLM, get_config
from electra_tf.finetuning import FinetuneConfig, run

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
LENGTH = 64
VOCAB_SIZE = 8192
GCIDE_BYTES = 8_000_000
ARMS = ("electra", "mlm", "none")


def build_data(shared: Path, work: Path) -> tokenization.Vocab:
    """Corpus -> learned vocabulary -> shards under `work` (reused when present)."""
    text = work / "corpus.txt"
    if not text.exists():
        corpus = shared / "data" / "corpus"
        gcide = (corpus / "gcide.txt").read_text(encoding="utf-8")[:GCIDE_BYTES]
        parts = [(corpus / name).read_text(encoding="utf-8")
                 for name in ("web.txt", "fortune.txt")]
        parts.append(gcide[:gcide.rfind("\n\n")] + "\n")  # whole documents only
        text.write_text("\n".join(parts), encoding="utf-8")  # a blank line between sources
    return build_shards(text, work, VOCAB_SIZE, LENGTH, num_shards=4)


def steps_at_equal_flops(cfg, electra_steps: int) -> dict[str, int]:
    pre = cfg.pretrain
    args = (cfg.model, pre.batch_size, pre.max_seq_length, pre.num_predictions)
    ratio = flops.electra_train_flops(*args) / flops.mlm_train_flops(*args)
    return {"electra": electra_steps, "mlm": int(round(electra_steps * ratio))}


def score_test_split(task_dir: Path, seed_dir: Path) -> float:
    """Accuracy of a seed's test predictions against the labels in test.tsv (column 0)."""
    with open(task_dir / "test.tsv", encoding="utf-8") as f:
        gold = [row[0] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if row]
    with open(seed_dir / "test_predictions.tsv", encoding="utf-8") as f:
        predicted = [line.rstrip("\n").split("\t")[1] for line in list(f)[1:] if line.strip()]
    if len(gold) != len(predicted):
        raise ValueError(f"{seed_dir}/test_predictions.tsv: {len(predicted)} rows, "
                         f"{task_dir}/test.tsv has {len(gold)}")
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold)


def compare_arms(shared: Path, work: Path, electra_steps: int = 3000,
                 arms: tuple[str, ...] = ARMS, learning_rate: float = 5e-4, seeds: int = 3,
                 finetune_lr: float = 3e-4, epochs: float = 3.0) -> dict:
    """Pretrains and fine-tunes `arms` (a subset of ARMS); returns the report dict."""
    task_dir = shared / "data" / "tasks" / "sentiment"
    work.mkdir(parents=True, exist_ok=True)
    # wall seconds of each stage, kept in the work dir: a resumed run reports the stages' real
    # cost, not the seconds it took to find them finished
    timings = work / "seconds.json"
    clock = json.loads(timings.read_text()) if timings.exists() else {}

    def record(key: str, done_before: bool, began: float) -> None:
        if not done_before:
            clock[key] = round(time.time() - began)
            timings.write_text(json.dumps(clock))

    began, done = time.time(), (work / "shards" / "dataset_info.json").exists()
    vocab = build_data(shared, work)
    record("data", done, began)
    base = get_config("tiny").replace(model={"vocab_size": vocab.size}, pretrain={
        "max_seq_length": LENGTH, "batch_size": 32, "learning_rate": learning_rate})
    steps = steps_at_equal_flops(base, electra_steps)
    pretrain_end = {}
    for arm, extra in (("electra", {}), ("mlm", BERT_MLM)):
        if arm not in arms:
            continue
        cfg = base.replace(pretrain={**extra, "train_steps": steps[arm],
                                     "warmup_steps": steps[arm] // 10})
        began = time.time()
        done = (tf.train.latest_checkpoint(str(work / f"pretrain_{arm}")) or "").endswith(
            f"ckpt-{steps[arm]}")
        final = pretraining.run(cfg, pretraining.RunOptions(  # resumes, or returns when done
            model_dir=str(work / f"pretrain_{arm}"), train_files=str(work / "shards" / "pre*"),
            vocab_file=vocab.path, steps_per_loop=100, log_every=steps[arm] // 10,
            save_every=steps[arm], eval_every=10**9))
        end_file = work / f"pretrain_{arm}" / "end_metrics.json"  # last logged training metrics
        if not done:
            end_file.write_text(json.dumps({
                k: final[k] for k in ("mlm_loss", "mlm_accuracy", "disc_loss", "disc_auc")
                if k in final and math.isfinite(final[k])}))
        pretrain_end[arm] = json.loads(end_file.read_text()) if end_file.exists() else {}
        record(f"pretrain_{arm}", done, began)
    spec = sentiment_spec()
    results = {}
    for arm in arms:
        began = time.time()
        init = str(work / f"pretrain_{arm}") if arm != "none" else ""
        out = work / f"finetune_{arm}"
        done = (out / "results.json").exists()
        ft = FinetuneConfig(task=spec, data_dir=str(task_dir), vocab_file=vocab.path,
                            output_dir=str(out), model=base.model, init_checkpoint=init,
                            max_seq_length=LENGTH, batch_size=32, eval_batch_size=256,
                            learning_rate=finetune_lr, epochs=epochs, layerwise_decay=1.0,
                            num_seeds=seeds, steps_per_loop=100, log_every=1000,
                            save_every=100_000)
        result = run(ft)
        dev = [m["accuracy"] for m in result["seeds"].values()]
        test = [score_test_split(task_dir, out / f"seed_{s}") for s in result["seeds"]]
        step_flops = (flops.electra_train_flops if arm == "electra" else
                      flops.mlm_train_flops)(base.model, 32, LENGTH,
                                             base.pretrain.num_predictions)
        results[arm] = {"pretrain_steps": steps.get(arm, 0),
                        "pretrain_flops": steps.get(arm, 0) * step_flops,
                        "pretrain_end": pretrain_end.get(arm, {}),
                        "dev_accuracy": dev, "test_accuracy": test,
                        "median_dev_accuracy": statistics.median(dev),
                        "median_test_accuracy": statistics.median(test)}
        record(f"finetune_{arm}", done, began)
    return {"model": base.to_dict()["model"],
            "pretrain": {"batch_size": 32, "max_seq_length": LENGTH,
                         "learning_rate": learning_rate, "vocab_size": vocab.size},
            "seconds": {**clock, "total": sum(clock.values())}, "arms": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared_dir", default=str(ROOT.parent / "shared"))
    p.add_argument("--work_dir", required=True)
    p.add_argument("--electra_steps", type=int, default=3000)
    p.add_argument("--learning_rate", type=float, default=5e-4)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--finetune_lr", type=float, default=3e-4)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--results_dir", default=str(RESULTS))
    a = p.parse_args()
    logging.set_verbosity(logging.INFO)  # progress lines of pretraining and fine-tuning
    report = compare_arms(Path(a.shared_dir), Path(a.work_dir), a.electra_steps, ARMS,
                          a.learning_rate, a.seeds, a.finetune_lr, a.epochs)
    options = " ".join(f"--{k}={v}" for k, v in vars(a).items()
                       if k not in ("shared_dir", "work_dir", "results_dir"))
    write_report({"command": f"experiments/electra_vs_mlm.py {options}", **report},
                 Path(a.results_dir))


def write_report(report: dict, results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "electra_vs_mlm.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = ["| arm | pretraining steps | pretraining FLOPs | end of pretraining | dev acc. "
            "(median) | test acc. (median) | dev per seed | test per seed |",
            "|---|---|---|---|---|---|---|---|"]
    for arm, r in report["arms"].items():
        end = ", ".join(f"{k} {v:.3f}" for k, v in r["pretrain_end"].items()
                        if k != "disc_loss") or "-"
        rows.append(f"| {arm} | {r['pretrain_steps']} | {r['pretrain_flops']:.3g} | {end} | "
                    f"{r['median_dev_accuracy']:.4f} | {r['median_test_accuracy']:.4f} | "
                    + ", ".join(f"{v:.4f}" for v in r["dev_accuracy"]) + " | "
                    + ", ".join(f"{v:.4f}" for v in r["test_accuracy"]) + " |")
    seconds = report["seconds"]
    m, p = report["model"], report["pretrain"]
    (results / "electra_vs_mlm.md").write_text(
        "# ELECTRA vs masked LM vs no pretraining (equal pretraining FLOPs)\n\n"
        f"Command: `.venv/bin/python {report['command']} --work_dir <dir>`\n\n"
        f"Encoder: {m['num_layers']} layers, hidden {m['hidden_size']}, embedding "
        f"{m['embedding_size']}, vocabulary {m['vocab_size']}; pretraining batch "
        f"{p['batch_size']} x {p['max_seq_length']} tokens, lr {p['learning_rate']}; "
        "fine-tuning on the sentiment task (8,480 train, 1,063 dev, 1,025 test snippets; "
        "majority class 0.52) with 3 seeds.\n\n" + "\n".join(rows) + "\n\n"
        f"Budget: {seconds['total'] / 60:.0f} minutes of wall time on 2 CPU cores for all arms "
        "and seeds (" + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items()
                                   if k != "total") + ").\n")
    plot(report, results / "electra_vs_mlm.png")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(report["arms"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for offset, split in ((-0.18, "dev"), (0.18, "test")):
        medians = [report["arms"][a][f"median_{split}_accuracy"] for a in arms]
        ax.bar([i + offset for i in range(len(arms))], medians, width=0.34,
               label=f"{split} (median of seeds)", alpha=0.7)
        for i, a in enumerate(arms):
            values = report["arms"][a][f"{split}_accuracy"]
            ax.scatter([i + offset] * len(values), values, color="black", s=10, zorder=3)
    ax.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(arms)), [f"{a}\n{report['arms'][a]['pretrain_flops']:.2g} FLOPs"
                                     for a in arms])
    ax.set_ylabel("sentiment accuracy")
    ax.set_ylim(0.45, 0.85)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Tiny encoder, equal pretraining compute")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
