"""Test fixtures and the environment every test runs in; shared plain helpers are in
helpers.py."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tokenizer models cached by the tests (and their subprocesses) stay out of the user's ~/.cache
os.environ.setdefault("ELECTRA_TF_CACHE", os.path.join(
    tempfile.gettempdir(), f"electra-tf-test-cache-{os.getuid()}"))

import pathlib  # noqa: E402

import pytest  # noqa: E402

import electra_tf  # noqa: E402, F401  (first: it sets TF's oneDNN option as users get it)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED} (tests on real data need ../shared)")
    return SHARED
