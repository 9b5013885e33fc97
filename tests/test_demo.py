"""`make demo`'s job, shortened: the real model and loss train and the losses fall."""

import math

import pytest

from electra_tf import demo


@pytest.mark.slow
def test_demo_losses_fall(capsys):
    summary = demo.main(["--steps", "150", "--batch", "16", "--seq", "32", "--log_every", "50"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step")]
    mlm = [float(ln.split()[5]) for ln in lines]
    acc = [float(ln.split()[9]) for ln in lines]
    assert len(lines) == 3 and mlm[-1] < mlm[0] - 0.2 and acc[-1] > acc[0]
    assert math.isfinite(summary["loss"]) and summary["disc_loss"] < 0.45


def test_markov_corpus_layout():
    ids = demo.markov_corpus(50, 8, 16)
    assert ids.shape == (8, 16)
    assert (ids[:, 0] == 2).all() and (ids[:, -1] == 3).all() and (ids[:, 1:-1] >= 5).all()
