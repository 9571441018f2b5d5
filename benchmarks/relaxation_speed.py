"""Structures relaxed per second: one at a time against lockstep batching (issue 10).

Why: CHGNet predicts a list of structures in one call, so relaxing several structures in lockstep
(``relax_many(..., batched=True)``: one batched force call per FIRE step) might be faster than one
relaxation after another. This measures both on the same strained OQMD-ICSD validation structures
with one BLAS/torch thread and writes ``benchmarks/results/relaxation_speed.{md,json}``; the search
uses whichever is faster (``StructureScorer(batched=...)``).

Usage:
    OMP_NUM_THREADS=1 python benchmarks/relaxation_speed.py [--n 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT.parent / "shared" / "data" / "oqmd_icsd" / "val.csv.gz"


def strained_structures(n: int, seed: int = 0):
    """The first ``n`` validation structures (<= 12 sites), expanded 8% and rattled by 0.05 Å."""
    from pymatgen.core import Structure

    csv.field_size_limit(10**9)
    rng = np.random.default_rng(seed)
    out = []
    with gzip.open(VAL, "rt") as fh:
        for row in csv.DictReader(fh):
            if int(row["nsites"]) > 12:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = Structure.from_str(row["cif"], fmt="cif")
            s.scale_lattice(s.volume * 1.08)
            out.append(Structure(s.lattice, s.species, s.cart_coords + rng.normal(0, 0.05, (len(s), 3)),
                                 coords_are_cartesian=True))
            if len(out) == n:
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    import torch

    from genms_pmg.energy.chgnet_model import CHGNetEnergyModel
    from genms_pmg.energy.relax import relax_many

    torch.set_num_threads(1)
    model = CHGNetEnergyModel()
    structures = strained_structures(args.n)
    model.predict_energy_per_atom(structures[:1])  # load once
    results = {}
    for mode in ("single", "batched"):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = relax_many(structures, model, steps=args.steps, batched=mode == "batched")
            times.append(time.perf_counter() - start)
        results[mode] = {"seconds": min(times), "structures_per_s": len(structures) / min(times),
                         "steps": [r.steps for r in out], "energies": [round(r.energy_per_atom, 5) for r in out]}
    same = np.allclose(results["single"]["energies"], results["batched"]["energies"], atol=2e-3)
    payload = {"n": len(structures), "steps_cap": args.steps, "repeats": args.repeats, "results": results,
               "same_energies_within_2meV": bool(same), "load_average": os.getloadavg(),
               "faster": max(results, key=lambda m: results[m]["structures_per_s"])}
    out_dir = ROOT / "benchmarks" / "results"
    (out_dir / "relaxation_speed.json").write_text(json.dumps(payload, indent=1))
    md = [
        "# Relaxation speed: one at a time vs lockstep batching (CHGNet, 1 thread)", "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/relaxation_speed.py --n {args.n} --repeats {args.repeats}`", "",
        f"{len(structures)} OQMD-ICSD validation structures (<= 12 sites) expanded 8% and rattled 0.05 Å; FIRE + "
        f"FrechetCellFilter, fmax 0.05 eV/Å, at most {args.steps} steps; best of {args.repeats}. Load average at the "
        f"end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores).", "",
        "| mode | seconds | structures / s |", "|---|---|---|",
    ]
    for mode, r in results.items():
        md.append(f"| {mode} | {r['seconds']:.1f} | {r['structures_per_s']:.2f} |")
    ratio = results["batched"]["structures_per_s"] / results["single"]["structures_per_s"]
    verdict = (f"batched / single = {ratio:.2f}: within the noise of this shared machine, so the search keeps one "
               "relaxation at a time (no threads)" if abs(ratio - 1) < 0.1 else
               f"batched / single = {ratio:.2f}: **{payload['faster']}** is faster")
    md += ["", f"Same final energies (2 meV/atom): {same}. {verdict}.", ""]
    (out_dir / "relaxation_speed.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
