"""Runs a benchmark command and adds its peak resident memory to each JSON line it prints.

    python bench/peak_rss.py <command ...>      (the same measure for ours and the peers)
"""

import json
import resource
import subprocess
import sys


def main() -> int:
    proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    peak_mb = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            record["peak_rss_mb"] = peak_mb
            line = json.dumps(record)
        print(line, flush=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
