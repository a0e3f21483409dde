"""What the benchmark scripts say about the machine they ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_and_memory() -> str:
    """E.g. ``2 cores AMD EPYC, 24 GiB``."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores {cpu}, {mem:.0f} GiB"
