"""What a result records about the machine it was computed on (experiments, benchmarks).

Timings on a shared machine are only meaningful next to the CPU model, the core count, the number of
torch threads and the load average, so every report and benchmark records the same fields
(:func:`machine_info`).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "load_average", "load_average_text", "machine_info"]


def cpu_model() -> str:
    """The ``model name`` of /proc/cpuinfo, else ``platform.processor()`` (or ``"unknown"``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the system has none."""
    try:
        return [float(v) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def load_average_text() -> str:
    """:func:`load_average` as ``"0.52 0.31 0.20"``, or ``"n/a"``."""
    load = load_average()
    return "n/a" if load is None else " ".join(f"{v:.2f}" for v in load)


def machine_info() -> dict[str, Any]:
    """Platform, CPU model, logical cores, Python and torch versions, torch threads, ``OMP_NUM_THREADS``
    and the load average now (a JSON-ready dict)."""
    import torch

    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average": load_average(),
    }
