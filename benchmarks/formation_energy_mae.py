#!/usr/bin/env python
"""CHGNet formation energies vs OQMD DFT on the OQMD-ICSD validation split.

Why: GenMS ranks candidates by CHGNet formation energy; this measures how far that number is from
DFT on known, already relaxed crystals. Energy-only CHGNet on the OQMD-relaxed structure, minus the
shipped CHGNet elemental references, against ``formation_energy_per_atom`` in ``val.csv.gz``.
Nothing is fitted to the validation data. OQMD uses fitted elemental chemical potentials for
some elements (O, N, F, H, Cl, ...) while the references here are raw CHGNet elemental energies,
so a per-anion breakdown with the mean signed error is reported too. CHGNet was trained on
Materials Project relaxations, many of which are of these same ICSD compounds, so this is not a
held-out test of CHGNet.

Usage:
    python benchmarks/formation_energy_mae.py [--limit N] [--relax-sample 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Structure

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "oqmd_icsd" / "val.csv.gz"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
ANIONS = ("O", "N", "F", "Cl", "Br", "I", "S", "Se", "Te", "H", "P", "As", "C", "B", "Si")


def metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """MAE, median AE, RMSE, R^2 and mean signed error (pred - true) in eV/atom."""
    ok = np.isfinite(pred) & np.isfinite(true)
    p, t = pred[ok], true[ok]
    if len(p) == 0:
        return {"n": 0}
    err = p - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    return {
        "n": int(len(p)),
        "mae": float(np.abs(err).mean()),
        "median_ae": float(np.median(np.abs(err))),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot > 0 else math.nan,
        "mean_signed_error": float(err.mean()),
    }


def anion_class(comp: Composition) -> str:
    """The most electronegative element of the compound if it is a typical anion, else 'metallic'."""
    if len(comp.elements) == 1:
        return "element"
    top = max(comp.elements, key=lambda el: (el.X if not math.isnan(el.X) else 0.0))
    return top.symbol if top.symbol in ANIONS else "other"


def parity_plot(true: np.ndarray, pred: np.ndarray, groups: list[str], path: Path, title: str) -> None:
    """Scatter of CHGNet vs DFT formation energy, oxides and O/N/F-free compounds coloured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=130)
    groups_arr = np.array(groups)
    for label, mask, color in (
        ("O/N/F-free", ~np.isin(groups_arr, ["O", "N", "F"]), "tab:blue"),
        ("oxides (O most electronegative)", groups_arr == "O", "tab:red"),
        ("nitrides / fluorides", np.isin(groups_arr, ["N", "F"]), "tab:green"),
    ):
        ax.scatter(true[mask], pred[mask], s=4, alpha=0.5, color=color, label=f"{label} ({mask.sum()})")
    lo = float(np.nanmin([true.min(), pred.min()])) - 0.2
    hi = float(np.nanmax([true.max(), pred.max()])) + 0.2
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("OQMD DFT formation energy (eV/atom)")
    ax.set_ylabel("CHGNet formation energy (eV/atom)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", markerscale=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--relax-sample", type=int, default=200, help="rows to relax (0: none)")
    parser.add_argument("--relax-steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from genms_pmg.energy.chgnet_model import CHGNetEnergyModel
    from genms_pmg.energy.formation import missing_references
    from genms_pmg.energy.relax import relax_structure

    df = pd.read_csv(args.data)
    if args.limit:
        df = df.iloc[: args.limit]
    df = df[np.isfinite(df["formation_energy_per_atom"])].reset_index(drop=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # "fractional coordinates rounded" chatter from the CIF parser
        warnings.simplefilter("ignore")
        structures = [Structure.from_str(cif, fmt="cif") for cif in df["cif"]]
    t_parse = time.perf_counter() - t0

    model = CHGNetEnergyModel()
    refs = model.elemental_references()
    missing = [missing_references(s.composition, refs) for s in structures]
    usable = np.array([not m for m in missing])
    missing_elements = sorted({el for m in missing for el in m}, key=lambda el: Element(el).Z)
    idx = np.flatnonzero(usable)
    use_structs = [structures[i] for i in idx]

    model.predict_energy_per_atom(use_structs[:2])  # load weights outside the timing
    t0 = time.perf_counter()
    energies = model.predict_energy_per_atom(use_structs, batch_size=args.batch_size)
    t_batch = time.perf_counter() - t0
    n_single = min(50, len(use_structs))
    t0 = time.perf_counter()
    for s in use_structs[:n_single]:
        model.predict_energy_per_atom([s])
    t_single = (time.perf_counter() - t0) / max(1, n_single)
    t0 = time.perf_counter()
    for s in use_structs[:n_single]:
        model.calculate(s)
    t_efs = (time.perf_counter() - t0) / max(1, n_single)

    if not use_structs:
        print("no row has references for all its elements; nothing to evaluate", file=sys.stderr)
        return 1
    comps = [s.composition for s in use_structs]
    e_form = np.array([
        e - sum(c.get_atomic_fraction(el) * refs[el.symbol] for el in c.elements) for c, e in zip(comps, energies)
    ])
    true = df["formation_energy_per_atom"].to_numpy()[idx]
    groups = [anion_class(c) for c in comps]
    n_nan = int((~np.isfinite(e_form)).sum())

    summary: dict = {
        "data": str(args.data),
        "rows": int(len(df)),
        "evaluated": int(np.isfinite(e_form).sum()),
        "skipped_missing_reference": int((~usable).sum()),
        "missing_reference_elements": missing_elements,
        "chgnet_nan": n_nan,
        "energy_only": metrics(e_form, true),
        "timing_s": {
            "cif_parse_per_structure": t_parse / max(1, len(df)),
            "energy_only_batched_per_structure": t_batch / max(1, len(use_structs)),
            "energy_only_one_by_one_per_structure": t_single,
            "energy_forces_stress_per_structure": t_efs,
            "batch_size": args.batch_size,
            "torch_threads": args.threads,
            "mean_atoms": float(np.mean([len(s) for s in use_structs])) if use_structs else 0.0,
        },
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
    }
    ga = np.array(groups)
    onf = np.isin(ga, ["O", "N", "F"])
    summary["energy_only_onf_free"] = metrics(e_form[~onf], true[~onf])
    summary["energy_only_onf"] = metrics(e_form[onf], true[onf])
    summary["by_anion"] = {
        g: metrics(e_form[ga == g], true[ga == g]) for g in sorted(set(groups), key=lambda g: -int((ga == g).sum()))
    }

    if args.relax_sample > 0:
        rng = np.random.default_rng(args.seed)
        ok = np.flatnonzero(np.isfinite(e_form))
        pick = np.sort(rng.choice(ok, size=min(args.relax_sample, len(ok)), replace=False))
        relaxed_ef, times = [], []
        for k in pick:
            t0 = time.perf_counter()
            _, e_rel = relax_structure(use_structs[k], model, steps=args.relax_steps)
            times.append(time.perf_counter() - t0)
            c = comps[k]
            relaxed_ef.append(e_rel - sum(c.get_atomic_fraction(el) * refs[el.symbol] for el in c.elements))
            print(f"relaxed {len(times)}/{len(pick)} {c.reduced_formula}: {times[-1]:.1f} s", flush=True)
        relaxed_ef = np.array(relaxed_ef)
        summary["relaxed_subsample"] = {
            "n": int(len(pick)),
            "seed": args.seed,
            "steps": args.relax_steps,
            "energy_only_same_rows": metrics(e_form[pick], true[pick]),
            "relaxed": metrics(relaxed_ef, true[pick]),
            "relaxed_onf_free": metrics(relaxed_ef[~onf[pick]], true[pick][~onf[pick]]),
            "mean_relaxation_energy_change": float(np.nanmean(relaxed_ef - e_form[pick])),
            "relax_time_per_structure_s": float(np.mean(times)),
        }

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "formation_energy_mae"
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    fin = np.isfinite(e_form)
    m = summary["energy_only"]
    parity_plot(true[fin], e_form[fin], [g for g, f in zip(groups, fin) if f], stem.with_suffix(".png"),
                f"CHGNet 0.3.0 vs OQMD, OQMD-ICSD val (n={m['n']}): MAE {m['mae']:.3f} eV/atom")
    stem.with_suffix(".md").write_text(report(summary, " ".join(["python", *sys.argv])))
    print(json.dumps(summary["energy_only"], indent=1))
    return 0


def _row(name: str, m: dict) -> str:
    if not m.get("n"):
        return f"| {name} | 0 | | | | | |"
    return (f"| {name} | {m['n']} | {m['mae']:.3f} | {m['median_ae']:.3f} | {m['rmse']:.3f} | "
            f"{m['r2']:.3f} | {m['mean_signed_error']:+.3f} |")


def report(s: dict, command: str) -> str:
    """Markdown summary of the benchmark."""
    head = "| subset | n | MAE | median AE | RMSE | R² | mean signed error |\n|---|---|---|---|---|---|---|"
    t = s["timing_s"]
    lines = [
        "# CHGNet formation energy vs OQMD DFT (OQMD-ICSD validation split)",
        "",
        f"Command: `{command}`",
        "",
        "CHGNet 0.3.0, energy only, on the OQMD-relaxed structures; formation energy against the shipped "
        "CHGNet elemental references (`genms_pmg/energy/chgnet_elemental_references.json`). Units eV/atom. "
        "Nothing was fitted to these data. CHGNet was trained on Materials Project data that include many of "
        "these ICSD compounds, so this is a consistency check against DFT, not a held-out test of CHGNet.",
        "",
        f"Rows: {s['rows']}; evaluated: {s['evaluated']}; skipped for a missing reference: "
        f"{s['skipped_missing_reference']} (elements: {', '.join(s['missing_reference_elements']) or 'none'}); "
        f"CHGNet could not evaluate: {s['chgnet_nan']}.",
        "",
        "## Energy only",
        "",
        head,
        _row("all", s["energy_only"]),
        _row("O/N/F-free", s["energy_only_onf_free"]),
        _row("O, N or F most electronegative", s["energy_only_onf"]),
        "",
        "OQMD formation energies use fitted chemical potentials for some elements (e.g. O, N, F, H, halogens, "
        "chalcogens) while the CHGNet references are raw CHGNet elemental energies, and CHGNet follows Materials "
        "Project (GGA/GGA+U, MP corrections) rather than OQMD; the mean signed error per anion below shows the "
        "resulting offsets (anion = most electronegative element; 'other' = none of the usual anions, mostly "
        "intermetallics; R² is meaningless for 'element', whose true values are all near 0). Only groups with "
        ">= 10 rows are listed.",
        "",
        "### By anion",
        "",
        head,
        *[_row(g, m) for g, m in s["by_anion"].items() if m.get("n", 0) >= 10],
        "",
    ]
    if "relaxed_subsample" in s:
        r = s["relaxed_subsample"]
        lines += [
            f"## After CHGNet relaxation (random {r['n']} rows, seed {r['seed']}, FIRE + FrechetCellFilter, "
            f"fmax 0.05, <= {r['steps']} steps)",
            "",
            head,
            _row("same rows, energy only", r["energy_only_same_rows"]),
            _row("same rows, relaxed", r["relaxed"]),
            _row("relaxed, O/N/F-free", r["relaxed_onf_free"]),
            "",
            f"Mean change of formation energy on relaxation: {r['mean_relaxation_energy_change']:+.4f} eV/atom; "
            f"relaxation time {r['relax_time_per_structure_s']:.2f} s per structure.",
            "",
        ]
    lines += [
        "## Timing (CPU)",
        "",
        f"torch threads: {t['torch_threads']}, mean atoms per cell: {t['mean_atoms']:.1f}, machine: {s['machine']}.",
        "",
        "| step | s per structure |",
        "|---|---|",
        f"| energy only, batched (batch {t['batch_size']}) | {t['energy_only_batched_per_structure']:.4f} |",
        f"| energy only, one by one | {t['energy_only_one_by_one_per_structure']:.4f} |",
        f"| energy + forces + stress (`calculate`) | {t['energy_forces_stress_per_structure']:.4f} |",
        f"| CIF parsing | {t['cif_parse_per_structure']:.4f} |",
        "",
        "![parity](formation_energy_mae.png)",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
