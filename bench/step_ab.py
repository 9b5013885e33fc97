"""Paired A/B of the pretraining step: a git revision of electra_tf against the working tree, in
one process, alternating single steps on the same batch.

Runs in separate processes drift with the machine (2x between minutes on a shared 2-core VM);
here both steps see the same moments: each round runs one step of each, in alternating order,
and the result is the median of the per-round time ratios beside both medians. The revision's
`electra_tf/` is exported with `git archive` into a temporary directory and imported as
`electra_tf_base` (its own imports renamed); both steps are built as `pretrain_step.py` builds
one, with the same random batch.

    .venv/bin/python bench/step_ab.py --base HEAD~1 --precision mixed_bfloat16 --rounds 30 \\
        --out bench/results/step_ab.jsonl
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402
from common import REPO, append_record, emit, tree_revision  # noqa: E402
from pretrain_step import arguments, build_step  # noqa: E402

from electra_tf.machine import describe  # noqa: E402

BASE_PACKAGE = "electra_tf_base"


def export_revision(revision: str, into: str) -> str:
    """`revision`'s electra_tf/ as the package BASE_PACKAGE under `into`; returns its commit."""
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", revision], check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", REPO, "archive", commit, "electra_tf"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    package = os.path.join(into, BASE_PACKAGE)
    os.rename(os.path.join(into, "electra_tf"), package)
    for root, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                with open(path) as f:
                    text = re.sub(r"\belectra_tf\b", BASE_PACKAGE, f.read())
                with open(path, "w") as f:
                    f.write(text)
    return commit


def paired_times(steps: dict, rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """{name: seconds per step}, `rounds` rounds of one step each, order alternating."""
    one = tf.constant(1)
    names = list(steps)
    times = {name: [] for name in names}
    for r in range(warmup + rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            step, iterator = steps[name]
            t = time.perf_counter()
            float(step.train(iterator, one)["loss"])
            if r >= warmup:
                times[name].append(time.perf_counter() - t)
    return times


def main() -> None:
    p = arguments(__doc__)
    p.add_argument("--base", default="HEAD", help="git revision to compare the working tree with")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--out", default=None, help="append the result as one JSON line")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        commit = export_revision(a.base, tmp)
        sys.path.insert(0, tmp)
        steps = {}
        for name, package in (("base", BASE_PACKAGE), ("tree", "electra_tf")):
            step, iterator, _ = build_step(a, package)
            steps[name] = (step, iterator)
        times = paired_times(steps, a.rounds)
    base, tree = (statistics.median(times[k]) for k in ("base", "tree"))
    ratios = [b / t for b, t in zip(times["base"], times["tree"])]
    cpu = describe()
    record = {"date": cpu["date"], "cpu": cpu["cpu"], "avx512_bf16": cpu["avx512_bf16"],
              "amx_bf16": cpu["amx_bf16"], "size": a.size, "batch": a.batch, "seq": a.seq,
              "precision": a.precision, "base": commit, "tree": tree_revision(), "rounds": a.rounds,
              "base_seq_per_s": round(a.batch / base, 2),
              "tree_seq_per_s": round(a.batch / tree, 2),
              "median_speedup": round(statistics.median(ratios), 4),
              "rounds_faster": sum(r > 1 for r in ratios)}
    emit(record)
    if a.out:
        append_record(a.out, record)


if __name__ == "__main__":
    main()
