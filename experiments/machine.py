"""What every results file records about the machine: the date, the CPU and the cores used."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess


def machine() -> dict:
    """{"date", "cpu" (lscpu's model name), "avx512_bf16" (bfloat16 matmuls), "cores"}."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                 if ln.startswith("Model name")), platform.processor() or "unknown")
    return {"date": datetime.date.today().isoformat(), "cpu": name,
            "avx512_bf16": "avx512_bf16" in text, "cores": len(os.sched_getaffinity(0))}
