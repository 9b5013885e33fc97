"""Writing files so that a reader never sees half of one (a crash or preemption mid-write
leaves the old file or none)."""

from __future__ import annotations

import os

import tensorflow as tf


def write_atomic(path: str, data: bytes) -> None:
    """Writes a file under a temporary name, then renames it: no half-written file remains."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "wb") as f:
        f.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)
