"""Summarizes benchmark JSON lines: median per (implementation, precision), ratios to ours.

    .venv/bin/python bench/summarize.py bench/results/pretrain_step.jsonl > ...md
Also writes the medians as JSON next to the input (same name, .json).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    errors, machine = [], None
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if "machine" in rec:
                machine = rec
                continue
            name = rec.get("impl") or rec.get("peer")
            if rec.get("input") == "tfrecord pipeline":
                name += " + TFRecord pipeline"
            if "error" in rec:
                errors.append(rec)
                continue
            precision = "bfloat16" if "bfloat16" in rec["precision"] else rec["precision"]
            groups[(name, precision)].append(rec)
    summary = []
    for (name, precision), recs in sorted(groups.items()):
        row = {"impl": name, "precision": precision, "runs": len(recs),
               "batch": recs[0]["batch"], "seq": recs[0]["seq"]}
        for key in ("seq_per_s", "first_step_s", "model_gflops", "peak_gflops", "mfu",
                    "peak_rss_mb"):
            values = [r[key] for r in recs if key in r]
            if values:
                row[key] = round(statistics.median(values), 3)
        # non-padding tokens: the peers' and the in-memory batches are full rows of random ids;
        # shards fill rows partly (records from before row_fill was measured: unknown)
        fills = [r.get("row_fill", None if r.get("input") == "tfrecord pipeline" else 1.0)
                 for r in recs]
        if None not in fills:
            row["real_tokens_per_s"] = round(row["seq_per_s"] * row["seq"]
                                             * statistics.median(fills))
        peak = (machine or {}).get("peak_gflops", {}).get(precision)
        if peak and "model_gflops" in row:  # the share of the machine's own matmul peak
            row["peak_gflops"], row["mfu"] = peak, round(row["model_gflops"] / peak, 3)
        summary.append(row)
    # ours = the full step with the input pipeline when measured, else the in-memory batch
    ours = {r["precision"]: r for r in summary if r["impl"] == "electra-tf"}
    ours.update({r["precision"]: r for r in summary
                 if r["impl"] == "electra-tf + TFRecord pipeline"})
    for row in summary:
        base = ours.get(row["precision"])
        if base and not row["impl"].startswith("electra-tf"):
            row["ours_speedup"] = round(base["seq_per_s"] / row["seq_per_s"], 2)
            row["ours_first_step_ratio"] = round(row["first_step_s"] / base["first_step_s"], 2)
    with open(path.rsplit(".", 1)[0] + ".json", "w") as f:
        json.dump({"machine": machine, "medians": summary, "errors": errors}, f, indent=2)
    if machine:
        m, peaks = machine["machine"], machine["peak_gflops"]
        print(f"{m['date']}, {m['cpu']}, {m['cores']} cores, avx512_bf16: {m['avx512_bf16']}, "
              f"amx_bf16: {m['amx_bf16']}; measured matmul peaks (2048 x 2048): float32 "
              f"{peaks['float32']} GFLOP/s, bfloat16 {peaks['bfloat16']} GFLOP/s. MFU: model "
              "GFLOP/s over the peak of the run's precision.\n")
    print("| implementation | precision | runs | seq/s (median) | real tok/s | MFU | peak RSS MB | "
          "first step s | ours: x faster | ours: first step x sooner |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in summary:
        print(f"| {r['impl']} | {r['precision']} | {r['runs']} | {r['seq_per_s']} | "
              f"{r.get('real_tokens_per_s', '')} | {r.get('mfu', '')} | "
              f"{r.get('peak_rss_mb', '')} | {r['first_step_s']} | "
              f"{r.get('ours_speedup', '')} | {r.get('ours_first_step_ratio', '')} |")
    for e in errors:
        print(f"\nerror: {json.dumps(e)}")


if __name__ == "__main__":
    main(sys.argv[1])
