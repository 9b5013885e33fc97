"""Where a pretraining step's time goes: TensorFlow's profiler over a few steps of the step
`bench/pretrain_step.py` times, summarized by operation type and by kind of work.

Self-time of every op on the host's threads (IDLE left out), and the time of the XLA-compiled
kernels (the training block's chains, the sampling), grouped: matmuls (oneDNN matmul,
batched matmul, fused matmul), random numbers (Philox bits: dropout masks, masking and
sampling uniforms), elementwise math, reductions, casts, softmax and cross-entropy,
gathers/scatters, optimizer, the rest. Prints a table; writes JSON lines (--out) with the
CPU's flags and the wall time of the profiled steps.

TensorFlow runs independent ops on two inter-op threads at once, each op on both cores, so
with its default the busy time exceeds the wall time and overlapping ops slow each other;
with TF_NUM_INTEROP_THREADS=1 the ops run one after another (the step ~10% slower) and the
shares are shares of the wall time. tf.data's ops (type Dataset) are left out: they run on its
own threads, and with one inter-op thread the profiler counts the prefetch's waiting as their
self-time.

    .venv/bin/python bench/profile_step.py --precision mixed_bfloat16 --steps 3 \
        --out bench/results/profile_step.jsonl
    TF_NUM_INTEROP_THREADS=1 .venv/bin/python bench/profile_step.py \
        --precision mixed_bfloat16 --steps 3 --out bench/results/profile_step.jsonl
"""

from __future__ import annotations

import collections
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402
from common import append_record, print_table, tree_revision  # noqa: E402
from pretrain_step import arguments, build_step  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from electra_tf.machine import describe  # noqa: E402

# op type -> kind of work (first match of the prefixes; the rest is "other")
KINDS = (
    ("matmul", ("_MklMatMul", "_MklNativeFusedMatMul", "_MklBatchMatMul", "MatMul",
                "BatchMatMul", "_MklFusedMatMul")),
    ("random numbers", ("StatelessRandom", "RandomUniform")),
    ("softmax / cross-entropy", ("_MklSoftmax", "Softmax", "SparseSoftmaxCrossEntropy",
                                 "SigmoidCrossEntropy", "LogSoftmax")),
    ("elementwise", ("Mul", "AddV2", "Add", "Sub", "Erfc", "Erf", "Exp", "Log", "Neg",
                     "Square", "SquaredDifference", "Rsqrt", "Sqrt", "RealDiv", "Div",
                     "Maximum", "Minimum", "SelectV2", "Select", "Greater", "Less", "Equal",
                     "NotEqual", "LogicalAnd", "Tanh", "Pow", "Sign", "Abs", "BitwiseAnd",
                     "RightShift", "LeftShift", "BitwiseOr", "_MklAdd", "_MklMul")),
    ("reductions", ("Sum", "Mean", "Max", "Min", "ArgMax", "AddN", "Prod", "All", "Any")),
    ("casts", ("Cast",)),
    ("gather / scatter / copy", ("Gather", "Scatter", "UnsortedSegmentSum", "Transpose",
                                 "_MklTranspose", "ConcatV2", "Pack", "Tile", "Slice",
                                 "StridedSlice", "Reshape", "TensorScatter", "OneHot",
                                 "Pad", "Where")),
    ("optimizer", ("ResourceApply", "AssignVariable", "AssignSub", "AssignAdd",
                   "ReadVariable")),
)


def kind_of(op_type: str) -> str:
    for kind, prefixes in KINDS:
        if any(op_type.startswith(p) for p in prefixes):
            return kind
    return "other"


def op_stats(logdir: str) -> list[dict]:
    """Rows of the profiler's framework_op_stats table (one per op)."""
    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data([path], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"{path}: the profiler could not summarize the trace")
    table = json.loads(data)[0]
    cols = [c["id"] for c in table["cols"]]
    return [{c: (cell or {}).get("v") for c, cell in zip(cols, row["c"])}
            for row in table["rows"]]


# The XLA-compiled chains of the training block (electra_tf/fused.py) and the sampling are not
# in the framework-op table; their executions are these trace events on the host's threads.
COMPILED_EVENT = "CpuExecutable::ExecuteAsyncOnStream"


def compiled_time_us(logdir: str) -> float:
    """Microseconds spent running XLA-compiled kernels in the trace."""
    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    total = 0.0
    for plane in space.planes:
        ids = {i for i, m in plane.event_metadata.items() if m.name == COMPILED_EVENT}
        total += sum(e.duration_ps for line in plane.lines for e in line.events
                     if e.metadata_id in ids) / 1e6
    return total


def main() -> None:
    p = arguments(__doc__)
    p.set_defaults(steps=3)
    p.add_argument("--out", default=None, help="append the summary as one JSON line")
    a = p.parse_args()
    step, iterator, cfg = build_step(a)
    one = tf.constant(1)
    for _ in range(2):  # trace and warm up outside the profile
        float(step.train(iterator, one)["loss"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        for _ in range(a.steps):
            float(step.train(iterator, one)["loss"])
        wall = (time.perf_counter() - started) / a.steps
        tf.profiler.experimental.stop()
        rows = op_stats(logdir)
        compiled = compiled_time_us(logdir)
    by_type, by_kind = collections.Counter(), collections.Counter()
    for row in rows:
        if row["type"] not in ("IDLE", "Dataset"):
            by_type[row["type"]] += row["total_self_time"]
            by_kind[kind_of(row["type"])] += row["total_self_time"]
    if compiled:
        by_kind["compiled chains (XLA)"] += compiled
    busy = sum(by_kind.values())
    cpu = describe()
    record = {"date": cpu["date"], "size": a.size, "batch": a.batch, "seq": a.seq,
              "precision": a.precision,
              "jit_compile": a.jit_compile, "steps": a.steps, "cpu": cpu["cpu"],
              "avx512_bf16": cpu["avx512_bf16"], "amx_bf16": cpu["amx_bf16"],
              "busy_ms_per_step": round(busy / 1e3 / a.steps, 1),
              "wall_ms_per_step": round(wall * 1e3, 1),
              "inter_op_threads": os.environ.get("TF_NUM_INTEROP_THREADS", "default"),
              "code": tree_revision(),
              "share_by_kind": {k: round(v / busy, 4) for k, v in by_kind.most_common()},
              "top_op_types": {k: round(v / busy, 4) for k, v in by_type.most_common(15)}}
    print(f"{a.size} B={a.batch} L={a.seq} {a.precision}: {record['busy_ms_per_step']} ms of "
          f"busy thread time per step, {record['wall_ms_per_step']} ms of wall time")
    print_table(("kind of work", "share of busy time"),
                [(k, f"{100 * v:.1f}%") for k, v in record["share_by_kind"].items()])
    print()
    print_table(("op type", "share"),
                [(k, f"{100 * v:.1f}%") for k, v in record["top_op_types"].items()])
    if a.out:
        append_record(a.out, record)


if __name__ == "__main__":
    main()
