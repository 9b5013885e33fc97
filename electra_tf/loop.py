"""The training loop shared by pretraining and fine-tuning.

A run hands `run_loop` a `train(n)` that performs n optimizer steps in one tf.function call and
returns their summed metrics (at least "loss"), and callbacks for what is its own (the progress
line's contents, evaluation). The loop owns what every run does the same way:

- chunks: at most `steps_per_loop` steps per call, cut at the log and save boundaries; the first
  call of a process runs one step alone (it is traced: throughput and ETA are measured from the
  end of it, and a new run's very first loss can be checked on its own);
- one non-finite guard: a NaN/Inf loss raises NonFiniteLossError naming the steps and the last
  good checkpoint, which is kept;
- throughput: examples per second and, for any summed key named in `rate_keys` (for example
  the real tokens of pretraining), that key per second;
- checkpoints every `save_every` steps and at the end; SIGTERM (preemption) or `stop_after`
  saves at the current step and ends the loop early;
- TensorBoard scalars (`write_summaries`).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.errors import NonFiniteLossError


@dataclasses.dataclass(frozen=True)
class Cadence:
    """How many steps, in what chunks, logged and saved how often."""

    total_steps: int
    batch_size: int  # global examples per step, for throughput
    steps_per_loop: int
    log_every: int
    save_every: int
    stop_after: int = 0  # stop (with a checkpoint) after this many steps in this process; 0=no

    def next_chunk(self, step: int, first_step: int) -> int:
        """Steps in the call that starts at `step` (this process started at `first_step`)."""
        if step == first_step:
            return 1  # the traced first call alone
        n = min(self.steps_per_loop, self.total_steps - step, _to_next(step, self.log_every),
                _to_next(step, self.save_every))
        if self.stop_after:
            n = min(n, first_step + self.stop_after - step)
        return n


@dataclasses.dataclass(frozen=True)
class Progress:
    """What a log boundary reports: the window's summed metrics and the run's speed."""

    step: int
    window_steps: int  # optimizer steps since the previous log
    sums: Mapping  # the window's summed metrics (as `train` returned them, added up)
    examples_per_second: float  # since the first call; NaN until one timed call is done
    eta_seconds: float  # NaN while the rate is unknown
    rates: Mapping[str, float]  # rate_keys per second since the first call (NaN until known)


def run_loop(cadence: Cadence, step: int, train: Callable[[int], Mapping],
             manager: tf.train.CheckpointManager, on_log: Callable[[Progress], None],
             after_chunk: Callable[[int], None] | None = None,
             accumulate: Callable[[dict, Mapping], dict] | None = None,
             rate_keys: tuple[str, ...] = (), label: str = "") -> bool:
    """Trains from `step` to cadence.total_steps; True when it got there, False when SIGTERM
    or stop_after ended it first (a checkpoint is saved at the step reached either way).
    `accumulate(window, sums)` adds a call's sums to the window's (default: key-wise sum)."""
    accumulate = accumulate or _add
    stop = {"term": False}
    installed, previous = _on_sigterm(lambda *_: stop.update(term=True))
    first_step = step
    timed_from, started = step, None  # throughput from the end of the first (traced) call
    timed: dict[str, float] = dict.fromkeys(rate_keys, 0.0)
    window: dict = {}
    window_steps = 0
    try:
        while step < cadence.total_steps:
            n = cadence.next_chunk(step, first_step)
            sums = train(n)
            step += n
            loss = float(sums["loss"]) / n
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"{label}loss is {loss} in the {n} steps ending at step {step}; the last "
                    f"good checkpoint ({manager.latest_checkpoint}) is kept; lower the learning "
                    "rate or check the data")
            if started is None:
                timed_from, started = step, time.time()
            else:
                for key in rate_keys:
                    timed[key] += float(sums[key])
            window = accumulate(window, sums)
            window_steps += n
            if step % cadence.log_every == 0 or step == cadence.total_steps:
                on_log(_progress(cadence, step, window, window_steps, timed_from, started,
                                 timed))
                window, window_steps = {}, 0
            if after_chunk is not None:
                after_chunk(step)
            saved = step % cadence.save_every == 0 or step == cadence.total_steps
            if saved:
                manager.save(checkpoint_number=step)
            if stop["term"] or (cadence.stop_after and step - first_step >= cadence.stop_after):
                if not saved:
                    manager.save(checkpoint_number=step)
                logging.info("%sstopping at step %d (%s); checkpoint saved", label, step,
                             "SIGTERM" if stop["term"] else "--stop_after")
                return step >= cadence.total_steps
        return True
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


def _progress(cadence: Cadence, step: int, window: dict, window_steps: int, timed_from: int,
              started: float, timed: dict[str, float]) -> Progress:
    elapsed = time.time() - started
    known = step > timed_from and elapsed > 0
    rate = (step - timed_from) * cadence.batch_size / elapsed if known else float("nan")
    eta = (cadence.total_steps - step) * cadence.batch_size / rate if rate > 0 else float("nan")
    return Progress(step, window_steps, window, rate, eta,
                    {k: v / elapsed if known else float("nan") for k, v in timed.items()})


def _add(total: dict, new: Mapping) -> dict:
    return {**total, **{k: total.get(k, 0) + np.asarray(v) for k, v in new.items()}}


def _to_next(step: int, every: int) -> int:
    return every - step % every


def _on_sigterm(handler) -> tuple[bool, object]:
    """Installs `handler` for SIGTERM: (installed, the previous handler). Off the main thread
    Python cannot install handlers: the loop then runs without preemption saves."""
    try:
        return True, signal.signal(signal.SIGTERM, handler)
    except ValueError:
        logging.warning("not on the main thread: SIGTERM will not save a checkpoint")
        return False, None


def duration(seconds: float) -> str:
    """'1h02m03s'; '?' when unknown (NaN or Inf)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def write_summaries(writer, step: int, metrics: Mapping[str, float]) -> None:
    """TensorBoard scalars of the finite values in `metrics` at `step`."""
    with writer.as_default(step=step):
        for key, value in metrics.items():
            if math.isfinite(value):
                tf.summary.scalar(key, value)
