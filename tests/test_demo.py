"""`make demo`'s job, shortened: the real model and loss train and the losses fall."""

import math

import pytest

from electra_tf import demo


@pytest.mark.slow
def test_demo_losses_fall(capsys):
    summary = demo.main(["--steps", "120", "--batch", "16", "--seq", "32", "--log_every", "60"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step")]
    first, last = (float(ln.split()[3]) for ln in (lines[0], lines[-1]))
    assert len(lines) == 2 and last < first
    assert math.isfinite(summary["loss"]) and summary["disc_auc"] > 0.6


def test_markov_corpus_layout():
    ids = demo.markov_corpus(50, 8, 16)
    assert ids.shape == (8, 16)
    assert (ids[:, 0] == 2).all() and (ids[:, -1] == 3).all() and (ids[:, 1:-1] >= 5).all()
