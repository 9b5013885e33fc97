"""The command-line scripts' common entry point: bad input ends with one line, not a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from electra_tf import QUIET


def run(main: Callable, errors: tuple[type[BaseException], ...],
        stopped: tuple[type[BaseException], ...] = ()) -> None:
    """Runs an absl `main`. `errors` (bad flags, config, data, files) print
    '<script>: error: ...' and exit 2; `stopped` (a run that had to stop, e.g. a non-finite
    loss) prints '<script>: stopped: ...' and exits 1."""
    from absl import app

    script = os.path.basename(sys.argv[0])
    try:
        app.run(lambda argv: main(_short_log_lines(argv)))
    except errors as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except stopped as e:
        print(f"{script}: stopped: {e}", file=sys.stderr)
        sys.exit(1)


def _short_log_lines(argv: list[str]) -> list[str]:
    """Log lines as '09:14:29 step 250/1500 ...' (warnings 'W 09:14:29 ...'), not absl's
    'I1201 09:14:29.432704 140534251084672 pretraining.py:269] step ...'. Returns argv."""
    from absl import logging as absl_logging

    class Short(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            line = super().format(record)
            return line if record.levelno < logging.WARNING else f"{record.levelname[0]} {line}"

    handler = absl_logging.get_absl_handler()
    handler.setFormatter(Short("%(asctime)s %(message)s", "%H:%M:%S"))
    if QUIET:
        handler.addFilter(_not_library_info)
    return argv


_LIBRARIES = tuple(f"{os.sep}{name}{os.sep}" for name in ("tensorflow", "keras", "tf_keras"))


def _not_library_info(record: logging.LogRecord) -> bool:
    """False for TensorFlow's and Keras's own INFO lines that reach absl's handler
    ("Sharding callback duration: 170 microseconds" at every checkpoint): quiet unless the user
    set TF_CPP_MIN_LOG_LEVEL. Their warnings and errors still show."""
    return record.levelno >= logging.WARNING or not any(
        lib in record.pathname for lib in _LIBRARIES)
