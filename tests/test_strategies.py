"""The same global batches give the same training under every strategy: one device, two
mirrored replicas (2 logical CPUs), two workers (MultiWorkerMirroredStrategy over 127.0.0.1),
gradient accumulation, and the whole step compiled with XLA (our TPU proxy).

Each run is a fresh process (tests/strategy_run.py): logical devices and TF_CONFIG must be set
before TensorFlow starts. Dropout and Gumbel sampling are on: their seeds follow each example's
position in the global batch, so only the order of float sums differs between strategies.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "strategy_run.py")
STEPS = 4


def start(out, *args, env=None):
    cmd = ["timeout", "-k", "5", "600", sys.executable, SCRIPT, "--steps", str(STEPS),
           "--out", str(out), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc, out):
    log, _ = proc.communicate()
    assert proc.returncode == 0, log[-3000:]
    run = np.load(out)
    weights = [run[f"w{i}"] for i in range(len(run.files) - 2)]
    return json.loads(str(run["losses"])), weights, int(run["replicas"])


def assert_same_training(a, b, rtol):
    (losses_a, weights_a, _), (losses_b, weights_b, _) = a, b
    for step_a, step_b in zip(losses_a, losses_b, strict=True):
        for key in step_a:
            np.testing.assert_allclose(step_a[key], step_b[key], rtol=rtol, err_msg=key)
    for wa, wb in zip(weights_a, weights_b, strict=True):
        np.testing.assert_allclose(wa, wb, rtol=rtol, atol=rtol)


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run.npz"
    run = finish(start(out, "--strategy", "one_device"), out)
    losses = [s["loss"] for s in run[0]]
    assert losses[-1] < losses[0]  # it trains (4 steps at a high learning rate)
    return run


@pytest.mark.slow
def test_mirrored_two_replicas_and_accumulation_match_one_device(one_device, tmp_path):
    runs = {name: (start(tmp_path / f"{name}.npz", *args), tmp_path / f"{name}.npz")
            for name, args in [("mirrored", ["--strategy", "mirrored"]),
                               ("accumulate", ["--strategy", "one_device",
                                               "--accumulation_steps", "2"])]}
    mirrored = finish(*runs["mirrored"])
    assert mirrored[2] == 2
    assert_same_training(one_device, mirrored, rtol=1e-5)
    assert_same_training(one_device, finish(*runs["accumulate"]), rtol=1e-5)


@pytest.mark.slow
def test_whole_step_compiles_with_xla(one_device, tmp_path):
    out = tmp_path / "xla.npz"
    # XLA fuses and reorders float math: equal up to rounding, not bitwise
    assert_same_training(one_device, finish(start(out, "--strategy", "one_device",
                                                  "--jit_compile"), out), rtol=2e-4)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_end_with_identical_weights(one_device, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        out = tmp_path / f"worker{index}.npz"
        procs.append((start(out, "--strategy", "multi_worker", env=env), out))
    chief, other = (finish(*p) for p in procs)
    assert chief[2] == other[2] == 2
    for wa, wb in zip(chief[1], other[1], strict=True):
        np.testing.assert_array_equal(wa, wb)  # all-reduced updates: bitwise identical
    assert_same_training(one_device, chief, rtol=1e-5)
