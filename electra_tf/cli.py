"""The command-line scripts' common entry point: bad input ends with one line, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run(main: Callable, errors: tuple[type[BaseException], ...],
        stopped: tuple[type[BaseException], ...] = ()) -> None:
    """Runs an absl `main`. `errors` (bad flags, config, data, files) print
    '<script>: error: ...' and exit 2; `stopped` (a run that had to stop, e.g. a non-finite
    loss) prints '<script>: stopped: ...' and exits 1."""
    from absl import app

    script = os.path.basename(sys.argv[0])
    try:
        app.run(main)
    except errors as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except stopped as e:
        print(f"{script}: stopped: {e}", file=sys.stderr)
        sys.exit(1)
