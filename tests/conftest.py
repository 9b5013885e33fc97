"""Shared test fixtures: tiny configs and synthetic packed batches."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tokenizer models cached by the tests (and their subprocesses) stay out of the user's ~/.cache
os.environ.setdefault("ELECTRA_TF_CACHE", os.path.join(
    tempfile.gettempdir(), f"electra-tf-test-cache-{os.getuid()}"))

import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import electra_tf  # noqa: E402, F401  (first: it sets TF's oneDNN option as users get it)
from electra_tf.config import get_config  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
# Special ids of the test vocabularies: deliberately not BERT's 0/100/101/102/103.
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


def tiny_config(vocab_size: int = 100, max_seq_length: int = 32, **model):
    """A very small model for unit tests (hidden 32, 2 layers, E=16 != H to exercise projection)."""
    sizes = dict(vocab_size=vocab_size, embedding_size=16, hidden_size=32, num_layers=2,
                 num_heads=2, intermediate_size=64, generator_fraction=0.5,
                 max_position_embeddings=64)
    sizes.update(model)
    return get_config("tiny").replace(model=sizes, pretrain={"max_seq_length": max_seq_length})


def packed_batch(batch_size: int, length: int, vocab_size: int, seed: int = 0,
                 min_len: int = 3) -> dict[str, tf.Tensor]:
    """Random packed sequences `[CLS] ... [SEP] [PAD]...` of mixed lengths, int32 [B, L]."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(min_len, length + 1, batch_size)
    ids = rng.integers(5, vocab_size, (batch_size, length))
    mask = (np.arange(length)[None] < lens[:, None]).astype(np.int32)
    ids = ids * mask
    ids[:, 0] = CLS
    ids[np.arange(batch_size), lens - 1] = SEP
    segments = np.zeros_like(ids)
    for i, n in enumerate(lens):
        if n > 6:  # two segments: [CLS] A [SEP] B [SEP]
            cut = n // 2
            ids[i, cut] = SEP
            segments[i, cut + 1:n] = 1
    return {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
            "segment_ids": tf.constant(segments, tf.int32)}


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED} (tests on real data need ../shared)")
    return SHARED
