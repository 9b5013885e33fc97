"""The training loop shared by pretraining and fine-tuning (electra_tf.loop), with a stand-in
`train` and checkpoint manager: chunking, the non-finite guard, saves, stop_after, rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from electra_tf import loop
from electra_tf.errors import NonFiniteLossError


class Manager:
    """Records saves as tf.train.CheckpointManager would number them."""

    def __init__(self):
        self.saved: list[int] = []

    def save(self, checkpoint_number: int) -> str:
        self.saved.append(checkpoint_number)
        return f"ckpt-{checkpoint_number}"

    @property
    def latest_checkpoint(self):
        return f"ckpt-{self.saved[-1]}" if self.saved else None


def trainer(losses: dict[int, float] | None = None):
    """A `train(n)` whose step k has loss losses.get(k, 1.0) and 10 tokens; records chunks."""
    state = {"step": 0, "chunks": []}

    def train(n: int) -> dict:
        steps = range(state["step"] + 1, state["step"] + n + 1)
        state["step"] += n
        state["chunks"].append(n)
        return {"loss": np.float32(sum((losses or {}).get(k, 1.0) for k in steps)),
                "tokens": np.float32(10 * n)}
    return train, state


def test_chunks_start_with_one_step_and_stop_at_log_and_save_boundaries():
    cadence = loop.Cadence(total_steps=23, batch_size=4, steps_per_loop=8, log_every=5,
                           save_every=10)
    train, state = trainer()
    logged: list[loop.Progress] = []
    manager = Manager()
    assert loop.run_loop(cadence, 0, train, manager, logged.append, rate_keys=("tokens",))
    assert state["chunks"] == [1, 4, 5, 5, 5, 3]
    assert [p.step for p in logged] == [5, 10, 15, 20, 23]
    assert [p.window_steps for p in logged] == [5, 5, 5, 5, 3]
    assert [float(p.sums["loss"]) for p in logged] == [5.0, 5.0, 5.0, 5.0, 3.0]
    assert manager.saved == [10, 20, 23]
    last = logged[-1]
    assert last.eta_seconds == 0 and last.examples_per_second > 0
    # tokens per second counts only the timed calls (after the first): 22 steps x 10 tokens
    assert last.rates["tokens"] == pytest.approx(
        22 * 10 / (22 * 4 / last.examples_per_second), rel=1e-6)


def test_a_resumed_run_continues_from_its_step():
    cadence = loop.Cadence(12, 4, 100, 4, 100)
    train, state = trainer()
    state["step"] = 6
    logged = []
    assert loop.run_loop(cadence, 6, train, Manager(), logged.append)
    assert state["chunks"] == [1, 1, 4]  # 7 alone (traced), then to the log boundary at 8
    assert [p.step for p in logged] == [8, 12]


def test_a_non_finite_loss_names_the_steps_and_the_last_checkpoint():
    cadence = loop.Cadence(40, 4, 10, 10, 10)
    train, _ = trainer({15: math.nan})
    manager = Manager()
    with pytest.raises(NonFiniteLossError, match=r"steps ending at step 20.*ckpt-10"):
        loop.run_loop(cadence, 0, train, manager, lambda p: None, label="seed 3: ")
    assert manager.saved == [10]
    assert issubclass(NonFiniteLossError, FloatingPointError)


def test_stop_after_saves_where_it_stops():
    cadence = loop.Cadence(100, 4, 10, 10, 50, stop_after=7)
    train, state = trainer()
    manager = Manager()
    assert not loop.run_loop(cadence, 0, train, manager, lambda p: None)
    assert state["step"] == 7 and manager.saved == [7]


def test_eval_hook_runs_after_each_call_and_accumulate_is_the_runs():
    cadence = loop.Cadence(6, 1, 3, 3, 6)
    train, _ = trainer()
    seen, windows = [], []

    def accumulate(window, sums):
        return {"calls": window.get("calls", 0) + 1, "loss": window.get("loss", 0) + sums["loss"]}
    loop.run_loop(cadence, 0, train, Manager(), lambda p: windows.append(dict(p.sums)),
                  seen.append, accumulate)
    assert seen == [1, 3, 6]
    assert [w["calls"] for w in windows] == [2, 1]


def test_duration():
    assert loop.duration(3723.9) == "1h02m03s"
    assert loop.duration(float("nan")) == "?"
