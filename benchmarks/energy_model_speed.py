"""Energy-model speed on this CPU: CHGNet against SevenNet on OQMD-ICSD validation structures.

Two numbers per model, on the first ``--n`` validation structures (<= 20 sites, as the search
generates), after one warm-up: energy-only structures per second through
``predict_energy_per_atom`` at ``--batch`` (the ranking path), and seconds per structure for energy
+ forces + stress, one structure at a time through ``calculate`` (the relaxation and ASE path) and
batched through ``calculate_many``. Best of ``--repeats``; torch pinned to ``--threads``.

    OMP_NUM_THREADS=1 python benchmarks/energy_model_speed.py [--models chgnet sevennet] [--n 50]

SevenNet needs the plugin: ``pip install -c constraints.txt ./plugins/genms-sevennet``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
VAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "oqmd_icsd" / "val.csv.gz"


def best_time(fn, repeats: int) -> float:
    """Best wall time (s) of ``fn()`` over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(name: str, structures: list, *, batch: int, repeats: int) -> dict:
    """Time one energy model; returns a row of the report."""
    from genms_pmg.plugins import create

    start = time.perf_counter()
    model = create("energy_models", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.predict_energy_per_atom(structures[:4], batch_size=batch)  # load weights, warm up
        model.calculate(structures[0])
        load_s = time.perf_counter() - start
        energies = model.predict_energy_per_atom(structures, batch_size=batch)
        t_energy = best_time(lambda: model.predict_energy_per_atom(structures, batch_size=batch), repeats)
        t_single = best_time(lambda: [model.calculate(s) for s in structures], repeats)
        t_many = best_time(
            lambda: [model.calculate_many(structures[i : i + batch]) for i in range(0, len(structures), batch)],
            repeats)
        t_forced = None
        if "batch_size" in inspect.signature(model.calculate_many).parameters:  # SevenNet picks 1 on CPU
            t_forced = best_time(lambda: model.calculate_many(structures, batch_size=batch), repeats)
    n = len(structures)
    return {
        "model": name, "energy_corrections": model.energy_corrections, "structures": n,
        "nan_energies": int(np.sum(~np.isfinite(energies))),
        "load_and_warmup_s": round(load_s, 2),
        "energy_only_batched_s": round(t_energy, 3),
        "energy_only_structures_per_s": round(n / t_energy, 1),
        "efs_single_s_per_structure": round(t_single / n, 4),
        "efs_single_structures_per_s": round(n / t_single, 1),
        "efs_batched_s_per_structure": round(t_many / n, 4),
        "efs_batched_structures_per_s": round(n / t_many, 1),
        "efs_forced_batch_s_per_structure": None if t_forced is None else round(t_forced / n, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["chgnet", "sevennet"])
    parser.add_argument("--n", type=int, default=50, help="validation structures (default 50)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", type=Path, default=VAL_CSV)
    parser.add_argument("--out", type=Path, default=RESULTS / "energy_model_speed")
    args = parser.parse_args(argv)

    import torch

    from _common import command_line, machine_info, write_atomic
    from genms_pmg.structures.diffusion.representation import load_structures_csv

    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = load_structures_csv(args.csv, limit=args.n)
    rows = []
    for name in args.models:
        rows.append(measure(name, structures, batch=args.batch, repeats=args.repeats))
        print(rows[-1], flush=True)
    atoms = [len(s) for s in structures]
    doc = {"command": command_line(argv, "energy_model_speed.py"), "machine": machine_info(),
           "settings": {"n": len(structures), "mean_atoms": round(float(np.mean(atoms)), 2),
                        "max_atoms": int(max(atoms)), "batch": args.batch, "repeats": args.repeats,
                        "threads": args.threads, "csv": str(args.csv.name)},
           "rows": rows}
    versions = {}
    for dist in ("chgnet", "sevenn", "torch", "e3nn", "torch_geometric"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:  # noqa: BLE001 - a model not installed is simply not listed
            pass
    doc["versions"] = versions
    out = args.out
    write_atomic(out.with_suffix(".json"), json.dumps(doc, indent=1) + "\n")
    write_atomic(out.with_suffix(".md"), report(doc))
    print(f"wrote {out.with_suffix('.md')} and .json")
    return 0


def report(doc: dict) -> str:
    s, m = doc["settings"], doc["machine"]
    lines = [
        "# Energy-model speed (CPU): CHGNet vs SevenNet",
        "",
        f"{s['n']} OQMD-ICSD validation structures (`{s['csv']}`, first rows with <= 20 sites, mean "
        f"{s['mean_atoms']} atoms, max {s['max_atoms']}), {s['threads']} torch thread(s), batch {s['batch']}, "
        f"best of {s['repeats']} after a warm-up. CPU: {m['cpu']} ({m['cores']} cores, shared with another "
        f"process; load average {m['load_average_1_5_15']}). Versions: "
        + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + ".",
        "",
        f"Command: `OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 {doc['command']}`",
        "",
        "| model | energies | energy only, batched: structures / s | E+F+S one at a time (`calculate`): "
        "s / structure | E+F+S `calculate_many` (chunks of the batch size, model's default): s / structure | "
        "E+F+S `calculate_many(batch_size=batch)`: s / structure | load + warm-up (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        forced = r.get("efs_forced_batch_s_per_structure")
        lines.append(f"| {r['model']} | {r['energy_corrections']} | {r['energy_only_structures_per_s']} | "
                     f"{r['efs_single_s_per_structure']} | {r['efs_batched_s_per_structure']} | "
                     f"{'–' if forced is None else forced} | {r['load_and_warmup_s']} |")
    by = {r["model"]: r for r in doc["rows"]}
    if "chgnet" in by and "sevennet" in by:
        c, v = by["chgnet"], by["sevennet"]
        lines += ["", f"SevenNet / CHGNet time ratio: energy only "
                  f"{c['energy_only_structures_per_s'] / v['energy_only_structures_per_s']:.1f}x, "
                  f"E+F+S one at a time {v['efs_single_s_per_structure'] / c['efs_single_s_per_structure']:.1f}x, "
                  f"E+F+S batched {v['efs_batched_s_per_structure'] / c['efs_batched_s_per_structure']:.1f}x."]
    lines += ["", "Load + warm-up includes importing the model's packages and reading its weights once per process "
              "(torch is imported before timing starts). SevenNet's `calculate_many` runs one structure at a time "
              "on CPU because a batched forward and backward pass costs more per structure there; the last E+F+S "
              "column forces the batch to show it. CHGNet's `calculate_many` always batches."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
