"""Helpers shared by the issue-5 benchmark scripts: resumable JSONL records, machine facts, atomic writes.

Why a module: each script writes per-item records as it goes so a killed run resumes where it
stopped, and each report states the machine it ran on; doing that once keeps the scripts short.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "2026-11-21"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def fingerprint(settings: dict) -> str:
    """Short hash of the settings a record depends on (a rerun with other settings starts afresh)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_records(path: Path, *, settings: str) -> dict[str, dict]:
    """Finished records of ``path`` with this settings hash, by their ``key``; cut-off lines are skipped."""
    from genms_pmg.evaluation import records

    return {rec["key"]: rec for rec in records.read_records(path) if rec.get("settings") == settings and "key" in rec}


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line and fsync (the shared ``genms_pmg.evaluation.records`` helper)."""
    from genms_pmg.evaluation import records

    records.append_record(path, record)


def write_atomic(path: Path, text: str) -> None:
    """Write a text file via a temporary name, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure atomically as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=130)
    os.replace(tmp, path)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display on the benchmark machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def command_line(argv: list[str] | None, script: str) -> str:
    """The command as a user would type it again."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"benchmarks/{script}", *map(shlex.quote, args)])


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (platform.processor() is empty on many Linux builds)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU, cores, torch version and threads, Python, load average: what the timings depend on."""
    import torch

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "load_average_1_5_15": load, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def mean_std(values: Iterable[float]) -> tuple[float | None, float | None, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values."""
    xs = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(xs) == 0:
        return None, None, 0
    return float(xs.mean()), float(xs.std(ddof=1)) if len(xs) > 1 else 0.0, len(xs)


def fmt(value: float | None, spec: str = ".3f") -> str:
    """A number for a markdown table, or an en dash when missing."""
    return "–" if value is None or not np.isfinite(value) else format(value, spec)
