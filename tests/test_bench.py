import importlib
import os
import re
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


@pytest.mark.skipif(subprocess.run(["git", "-C", BENCH, "rev-parse"], capture_output=True)
                    .returncode != 0, reason="bench/step_ab.py exports from git: not a checkout")
def test_step_ab_exports_a_revision_as_its_own_package(tmp_path, monkeypatch):
    """The base of a paired A/B is the revision's own code: imported beside electra_tf, every
    module of it (and of its subpackages) refers to its own copy, none to the working tree's."""
    monkeypatch.syspath_prepend(BENCH)
    step_ab = importlib.import_module("step_ab")
    commit = step_ab.export_revision("HEAD", str(tmp_path))
    assert len(commit) >= 7
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        layers = importlib.import_module("electra_tf_base.layers")
        masking = importlib.import_module("electra_tf_base.data.masking")
        assert layers.__file__.startswith(str(tmp_path))
        assert layers.rng.__name__ == "electra_tf_base.rng"
        assert masking.__file__.startswith(str(tmp_path))
        for path, _, files in os.walk(tmp_path):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(path, name)) as f:
                        assert not re.search(r"\belectra_tf\b(?!_base)", f.read()), name
    finally:
        for name in [m for m in sys.modules if m.startswith("electra_tf_base")]:
            del sys.modules[name]
