"""electra-tf: ELECTRA pretraining, fine-tuning and serving in TensorFlow 2 / Keras 3."""

import contextlib
import os
import sys

# oneDNN kernels: 15-25% faster ELECTRA-Small training steps in interleaved A/B runs on an
# AVX2-only CPU (a one-off measurement, not yet a committed benchmark); TF enables them by
# default only on some CPUs. Takes effect only when electra_tf is imported before tensorflow;
# an explicit TF_ENABLE_ONEDNN_OPTS=0 wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Quiet TensorFlow unless the user asks for its logs: importing it prints a dozen C++ lines
# (oneDNN and CUDA notices, "failed call to cuInit" on every machine without a GPU) that say
# nothing about the run. A TF_CPP_MIN_LOG_LEVEL the user set wins and keeps everything as TF
# prints it (0 = all); ours is marked so that the processes a command starts stay quiet too.
QUIET = os.environ.get("ELECTRA_TF_QUIET_LOGS") == "1" or "TF_CPP_MIN_LOG_LEVEL" not in os.environ
if QUIET:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # C++ errors too: ours surface as exceptions
    os.environ["ELECTRA_TF_QUIET_LOGS"] = "1"


@contextlib.contextmanager
def _stderr_silenced():
    """fd 2 to /dev/null: TF's C++ logging writes there before it reads TF_CPP_MIN_LOG_LEVEL."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


if QUIET and "tensorflow" not in sys.modules:
    with _stderr_silenced():
        import tensorflow as _tf  # noqa: F401  (the import is what prints)
    _tf.get_logger().setLevel("ERROR")  # AutoGraph and tf.function retracing notices

__version__ = "0.1.0"
