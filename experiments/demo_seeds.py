"""`make demo` for several pretraining seeds and both precisions, and a table of the results.

Each run is the demo itself (`python -m electra_tf.demo --seed S --precision P`, output in
<runs_dir>/demo_<P>_s<S>); a run whose summary.json exists is read, not rerun, unless
--refinetune (the demo with --reuse_pretraining: its pretraining kept, fine-tuning, export and
summary redone, e.g. after a change to the demo's fine-tuning). The table gives, per run, the
pretrained and random-weights dev and test accuracy (medians over the fine-tuning seeds, each
seed's dev accuracy beside), the discriminator's last AUC and the four example sentences'
labels and probabilities.

    .venv/bin/python experiments/demo_seeds.py --runs_dir runs --seeds 0,1,2 \
        --precisions mixed_bfloat16,float32 --out experiments/results/demo_seeds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from electra_tf.machine import describe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs_dir", default="runs")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--precisions", default="mixed_bfloat16,float32")
    p.add_argument("--only_existing", action="store_true", help="read finished runs only")
    p.add_argument("--refinetune", action="store_true",
                   help="redo each existing run's fine-tuning (the demo's --reuse_pretraining)")
    p.add_argument("--out", required=True, help="writes <out>.json and <out>.md")
    a = p.parse_args()
    rows, missing = [], []
    for precision in a.precisions.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            out = os.path.join(a.runs_dir, f"demo_{precision}_s{seed}")
            again = a.refinetune and os.path.exists(f"{out}/pretrain/checkpoint")
            if (again or not os.path.exists(f"{out}/summary.json")) and not a.only_existing:
                subprocess.run([sys.executable, "-m", "electra_tf.demo", f"--output_dir={out}",
                                f"--seed={seed}", f"--precision={precision}",
                                *(["--reuse_pretraining"] if again else [])], check=True,
                               cwd=ROOT)
            if not os.path.exists(f"{out}/summary.json"):
                missing.append(f"{precision} seed {seed}")
                continue
            with open(f"{out}/summary.json") as f:
                s = json.load(f)
            rows.append({"precision": precision, "seed": seed,
                         "dev_accuracy": s["dev_accuracy"], "test_accuracy": s["test_accuracy"],
                         "random_dev_accuracy": s["random_init"]["dev_accuracy"],
                         "random_test_accuracy": s["random_init"]["test_accuracy"],
                         "dev_by_seed": s.get("dev_accuracy_by_seed", [s["dev_accuracy"]]),
                         "random_dev_by_seed": s["random_init"].get(
                             "dev_accuracy_by_seed", [s["random_init"]["dev_accuracy"]]),
                         "disc_auc": s["pretraining_last"].get("disc_auc"),
                         "predictions": s["predictions"]})
    result = {**describe(), "arguments": vars(a), "runs": rows,
              "command": " ".join(["python", *sys.argv]), "missing": missing}
    with open(f"{a.out}.json", "w") as f:
        json.dump(result, f, indent=1)
    lines = [f"# `make demo` over pretraining seeds and precisions ({result['date']}, "
             f"{result['cpu']}, avx512_bf16: {result['avx512_bf16']})", "",
             f"    {result['command']}", "",
             f"Not finished: {', '.join(missing) or 'none'}.", "",
             "Accuracies are medians over the fine-tuning seeds, each seed's dev accuracy in "
             "brackets.", "",
             "| precision | pretraining seed | dev (pretrained) | dev (random) | "
             "test (pretrained) | test (random) | last train AUC | sentences (label p) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sentences = ", ".join(f"{lab} {prob:.2f}" for _, lab, prob in r["predictions"])
        dev, random = (" / ".join(f"{v:.3f}" for v in r[k])
                       for k in ("dev_by_seed", "random_dev_by_seed"))
        lines.append(f"| {r['precision']} | {r['seed']} | {r['dev_accuracy']:.3f} ({dev}) | "
                     f"{r['random_dev_accuracy']:.3f} ({random}) | {r['test_accuracy']:.3f} | "
                     f"{r['random_test_accuracy']:.3f} | {r['disc_auc']:.3f} | {sentences} |")
    with open(f"{a.out}.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
