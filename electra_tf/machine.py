"""What this machine is: for choosing a precision (the demo) and for recording beside every
measurement (experiments/, bench/): the CPU's model name, whether it multiplies bfloat16 in
hardware, and the cores this process may use."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess


def cpu_flags() -> str:
    """/proc/cpuinfo's text ("" where there is none, e.g. not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def has_bfloat16_matmul() -> bool:
    """True when the CPU has bfloat16 dot products (AMX or AVX-512 BF16)."""
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def describe() -> dict:
    """{"date", "cpu" (lscpu's model name), "avx512_bf16", "amx_bf16", "cores"}."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        text = ""
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                 if ln.startswith("Model name")), platform.processor() or "unknown")
    flags = cpu_flags()
    return {"date": datetime.date.today().isoformat(), "cpu": name,
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
            "cores": len(os.sched_getaffinity(0))}
