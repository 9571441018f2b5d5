"""JSON-lines records for resumable benchmarks: one helper instead of one per benchmark.

Why JSONL appended with fsync: a benchmark stopped at any point keeps every finished item, and a
rerun with the same settings reuses them. A line cut short by the interruption is skipped on read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["append_record", "read_records", "write_records"]


def append_record(path: str | Path, record: dict) -> None:
    """Append one JSON line and fsync, so an interruption loses at most the item in progress."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: str | Path) -> list[dict]:
    """Every complete JSON object line of ``path`` (none when it does not exist)."""
    path = Path(path)
    out: list[dict] = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by an interruption
            if isinstance(record, dict):
                out.append(record)
    return out


def write_records(path: str | Path, records: Iterable[dict]) -> None:
    """Replace ``path`` with ``records`` atomically (a reader never sees half a file)."""
    from genms_pmg.data.cache import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(r, default=str) + "\n" for r in records).encode())
