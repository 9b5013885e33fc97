"""Chinese NER (People's Daily, PER/LOC/ORG): the tiny model pretrained on the Chinese corpus
against random weights, several fine-tuning seeds each, span F1.

Steps (each skipped when its output exists, so an interrupted run continues):
1. shards and a learned vocabulary from ../shared/data/zh/corpus/zh.txt (the builder);
2. the tiny preset pretrained on them (`run_pretraining.py`, 1,500 steps of 32 x 128);
3. `run_finetuning.py` on ../shared/data/zh/ner as a generic CoNLL tagging task (one character
   per line, BIO tags; sentences longer than the row are read in overlapping windows), from the
   pretrained checkpoint and from random weights, --num_seeds seeds each.
Writes <out>.json (per-seed and median F1, the pretraining's held-out health, the commands) and
<out>.md.

    .venv/bin/python experiments/zh_ner.py --work_dir runs/zh_ner --seeds 3 \
        --out experiments/results/zh_ner
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from exp_common import ROOT, run_script

from electra_tf.machine import describe


def eval_lines(log: Path) -> dict:
    """{step: held-out metrics} from a pretraining log's 'eval at step N: k v k v ...' lines."""
    out = {}
    for line in log.read_text().splitlines():
        if "eval at step " in line:
            step, rest = line.split("eval at step ", 1)[1].split(":", 1)
            words = rest.split()
            out[step] = {k: float(v) for k, v in zip(words[::2], words[1::2])
                         if v.replace(".", "", 1).isdigit()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared_dir", default="../shared",
                   help="the shared data's parent, relative to the project (the scripts run there)")
    p.add_argument("--work_dir", default="runs/zh_ner")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pretrain_steps", type=int, default=1500)
    p.add_argument("--precision", default="mixed_bfloat16")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--learning_rate", type=float, default=3e-4)
    p.add_argument("--out", required=True, help="writes <out>.json and <out>.md")
    a = p.parse_args()
    zh = Path(a.shared_dir) / "data" / "zh"
    if not (ROOT / zh / "ner").is_dir():
        sys.exit(f"{zh / 'ner'} not found: this experiment needs ../shared/data/zh")
    work = Path(a.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data, pre = work / "data", work / "pretrain"
    commands = {
        "data": ["build_pretraining_dataset.py", f"--input={zh / 'corpus' / 'zh.txt'}",
                 f"--output_dir={data}", "--learn_vocab_size=8000", "--max_seq_length=128",
                 "--eval_fraction=0.02"],
        "pretrain": ["run_pretraining.py", "--flagfile=configs/tiny.flags", f"--model_dir={pre}",
                     f"--train_files={data}/pretrain_data*", f"--eval_files={data}/eval_data*",
                     f"--vocab_file={data}/vocab.txt", "--max_seq_length=128",
                     f"--train_steps={a.pretrain_steps}",
                     f"--warmup_steps={a.pretrain_steps // 10}", f"--precision={a.precision}",
                     "--seed=0", "--log_every=250", f"--eval_every={a.pretrain_steps // 2}",
                     "--eval_steps=20"],
    }
    if not (data / "dataset_info.json").exists():
        run_script(commands["data"], work / "data.log")
    log = work / "pretrain.log"
    if not log.exists() or str(a.pretrain_steps) not in eval_lines(log):
        run_script(commands["pretrain"], work / "pretrain.log")
    finetune = ["run_finetuning.py", "--task=generic", "--task_type=tagging", "--format=conll",
                "--label_column=1", f"--data_dir={zh / 'ner'}", f"--vocab_file={data}/vocab.txt",
                "--max_seq_length=128", f"--epochs={a.epochs}",
                f"--learning_rate={a.learning_rate}", "--layerwise_decay=1.0",
                "--test_has_labels", f"--num_seeds={a.seeds}", "--log_every=200"]
    arms = {"pretrained": [f"--init_checkpoint={pre}"], "random": ["--model_size=tiny"]}
    results = {}
    for arm, init in arms.items():
        out = work / f"ner_{arm}"
        commands[f"ner_{arm}"] = [*finetune, *init, f"--output_dir={out}"]
        if not (out / "results.json").exists():
            out.mkdir(parents=True, exist_ok=True)
            run_script(commands[f"ner_{arm}"], work / f"ner_{arm}.log")
        results[arm] = json.loads((out / "results.json").read_text())
    info = json.loads((data / "dataset_info.json").read_text())
    report = {**describe(), "arguments": vars(a),
              "commands": {k: "python " + shlex.join(v) for k, v in commands.items()},
              "pretraining_data": {k: info[k] for k in info if not isinstance(info[k], dict)},
              "pretraining_eval": eval_lines(work / "pretrain.log"),
              "ner": {arm: {"median": r["median"], "seeds": r["seeds"]}
                      for arm, r in results.items()}}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(report, indent=1))
    Path(f"{a.out}.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    lines = [f"# Chinese NER: the tiny model pretrained on Chinese against random weights "
             f"({r['date']}, {r['cpu']}, {r['cores']} cores)", "",
             "Commands (`experiments/zh_ner.py`; numbers in the .json beside this file):", ""]
    lines += [f"    {c}" for c in r["commands"].values()]
    last = max(r["pretraining_eval"], key=int) if r["pretraining_eval"] else None
    if last:
        lines += ["", f"Pretraining, held out at step {last}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in r["pretraining_eval"][last].items()) + "."]
    lines += ["", "| start | dev F1 (median) | dev F1 by seed | test F1 (median) |",
              "|---|---|---|---|"]
    for arm, res in r["ner"].items():
        seeds = " / ".join(f"{m['f1']:.3f}" for m in res["seeds"].values())
        lines.append(f"| {arm} | {res['median']['f1']:.3f} | {seeds} | "
                     f"{res['median'].get('test_f1', float('nan')):.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
