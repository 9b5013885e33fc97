"""Leaner Grappler settings for our compiled training steps: the same kernels, a faster first step.

A tf.function is optimized by Grappler the first time it runs. For the ELECTRA-Small pretraining
step (~20,000 graph nodes) the default settings spent ~16 s there on this project's 2-core CPU,
a third of the time to the first step, in passes that leave the step's kernels as they are on
CPU: the memory optimizer (recomputation and swapping heuristics for accelerators, 3.2 s), the
TFG/MLIR passes (3.3 s), the layout optimizer (for NCHW convolutions, 0.7 s) and a second round
of all passes (~5 s). Skipping them cut the first call from 25 s to 16 s with the same step time
(4.8-5.1 s vs 4.5-5.5 s). The passes that shape the kernels (remapper fusions, constant folding,
arithmetic and dependency optimization, pruning) stay on. Per-pass times:
`TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_VMODULE=meta_optimizer=1 .venv/bin/python bench/pretrain_step.py`
(with `lean_config` returning `config` unchanged for the defaults).

TF has no public switch for these three (`tf.config.optimizer.set_experimental_options` covers
others), so `lean_grappler` sets the eager context's per-thread function-call options, and only
around our own calls: the rest of the process keeps TF's defaults. A function is optimized with
the options of its first call; later calls must use the same options, or TF re-instantiates it.
"""

from __future__ import annotations

import contextlib
import functools

from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from tensorflow.python.eager import context

_RC = rewriter_config_pb2.RewriterConfig


def lean_config(config: config_pb2.ConfigProto) -> config_pb2.ConfigProto:
    """A copy of `config` without the Grappler passes that cost time and change nothing on CPU."""
    lean = config_pb2.ConfigProto()
    lean.CopyFrom(config)
    rewrite = lean.graph_options.rewrite_options
    rewrite.memory_optimization = _RC.NO_MEM_OPT
    rewrite.layout_optimizer = _RC.OFF
    rewrite.disable_tfg_optimizer = True
    rewrite.meta_optimizer_iterations = _RC.ONE
    return lean


@functools.lru_cache(maxsize=8)
def _lean_serialized(serialized: bytes) -> config_pb2.ConfigProto:
    """`lean_config` of a serialized config, computed once per distinct config (calls such as
    fine-tuning's per-batch predict would otherwise parse the proto every time)."""
    config = config_pb2.ConfigProto()
    config.ParseFromString(serialized)
    return lean_config(config)


@contextlib.contextmanager
def lean_grappler():
    """Runs tf.function calls inside it with `lean_config` of the current call options."""
    ctx = context.context()
    previous = ctx.function_call_options
    ctx.function_call_options = context.FunctionCallOptions(
        executor_type=previous.executor_type,
        config_proto=_lean_serialized(previous.config_proto_serialized))
    try:
        yield
    finally:
        ctx.function_call_options = previous

