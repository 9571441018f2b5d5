#!/usr/bin/env python
"""Seconds per request and per structure for each stage of ``genms generate`` on this CPU.

Why: a user waiting on a request wants to know where the time goes and what a bigger search
costs. This runs ``LanguageStructureGenerator`` at the defaults of ``genms generate`` (H = 10,
L = 4, W = 5, generators diffusion + templates, CHGNet) on a few requests across families, then
relaxes the top candidate of each with FIRE (``genms_pmg.energy.relax``). Stage times come from
``SearchResult.timings`` (parse, propose, R_hi scoring, generation, energy) and from timing
wrappers put on each generator's ``generate`` and each R_lo heuristic's ``evaluate`` (the search
does not time those separately); "other" is the rest of ``search()`` (tree bookkeeping, the
returned candidates' space groups). Model loading and a first (cold) request are measured apart,
so the per-request numbers are warm. One JSONL record per request, so a rerun resumes.

Usage:
    python benchmarks/stage_cost.py [--threads 1] [--relax-steps 300]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from _common import (
    RESULTS,
    append_record,
    command_line,
    fingerprint,
    fmt,
    machine_info,
    pyplot,
    read_records,
    save_figure,
    write_atomic,
)
from tqdm.auto import tqdm

REQUESTS = (
    "a stable perovskite that is not in Materials Project",
    "a stable spinel oxide containing Mg",
    "a stable pyrochlore that is not in Materials Project",
    "a delafossite oxide containing Cu that is not in Materials Project",
    "a stable half-Heusler compound that is not in Materials Project",
)
WARMUP_REQUEST = "a stable rocksalt nitride"
STEM = "stage_cost"
LOADS_KEY = "__loads__"  # the record holding the load times of the run that measured the requests


class StageClock:
    """Seconds and item counts per stage, filled by wrappers around plugin methods."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.seconds.clear()
        self.items.clear()

    def wrap(self, obj, method: str, stage: str, *, count=None) -> None:
        """Replace ``obj.method`` by a timed copy; ``functools.wraps`` keeps its signature visible, so the
        search's keyword sniffing (``space_group``) sees the real parameters."""
        original = getattr(obj, method)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                out = original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
            self.items[stage] += count(args, out) if count else 1
            return out

        setattr(obj, method, timed)


def instrument(search, clock: StageClock) -> None:
    """Time each generator and each R_lo heuristic of a built search."""
    for gen in search.generators:
        clock.wrap(gen, "generate", f"generate:{gen.name}", count=lambda args, out: len(out))
    for heuristic in search.structure_heuristics:
        clock.wrap(heuristic, "evaluate", f"check:{heuristic.name}")


def run_request(generator, clock: StageClock, request: str, *, seed: int, relax_steps: int, fmax: float,
                n: int = 3) -> dict:
    """One warm search plus the relaxation of its top candidate; stage seconds and counts."""
    from genms_pmg.energy.chgnet_model import CHGNetEnergyModel
    from genms_pmg.energy.formation import formation_energy_per_atom
    from genms_pmg.energy.relax import relax_structure

    clock.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = generator.search(request, n, seed=seed)
    t = result.timings
    stages = {"parse": t.get("parse", 0.0), "propose": t.get("propose", 0.0),
              "score_formulas": t.get("score_formulas", 0.0)}
    stages.update({k: v for k, v in clock.seconds.items() if k.startswith("generate:")})
    stages.update({k: v for k, v in clock.seconds.items() if k.startswith("check:")})
    stages["energy"] = t.get("energy", 0.0)
    stages["other"] = t["total"] - sum(stages.values())
    nodes = result.evaluated()
    structures = [nd for nd in nodes if nd["kind"] == "structure"]
    counts = {k: v for k, v in clock.items.items() if k.startswith("generate:")}
    counts["structures"] = len(structures)
    counts["energy"] = sum("energy_per_atom" in nd["data"] for nd in structures)
    counts["formulas"] = sum(nd["kind"] == "formula" for nd in nodes)
    counts["formulas_expanded"] = sum(nd["kind"] == "formula" and bool(nd["data"].get("expanded")) for nd in nodes)
    top = result.candidates[0]
    model = CHGNetEnergyModel()
    calls = {"n": 0}
    original = model.calculate

    def counted(structure):
        calls["n"] += 1
        return original(structure)

    model.calculate = counted  # force evaluations = FIRE steps + 1
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, e_relaxed = relax_structure(top.structure, model, fmax=fmax, steps=relax_steps)
    relax_seconds = time.perf_counter() - start
    refs = model.elemental_references()
    return {
        "request": request, "family": result.request.family, "total": t["total"], "stages": stages,
        "counts": counts, "relax_seconds": relax_seconds, "relax_force_calls": calls["n"],
        "top": {"formula": top.formula, "num_sites": len(top.structure), "generator": top.provenance.get("generator"),
                "e_form": top.scores.get("e_form_per_atom"),
                "e_form_relaxed": formation_energy_per_atom(top.structure.composition, e_relaxed, refs)
                if np.isfinite(e_relaxed) else None},
    }


def run(*, requests: list[str], seed: int, formulas: int, structures: int, width: int, generators: list[str],
        relax_steps: int, fmax: float, warmup: str | None, out: Path | None, progress: bool = True
        ) -> tuple[list[dict], dict]:
    """Load models (timed), run a cold warm-up request, then every request warm; (records, load times).

    When every request already has a record, nothing is loaded or run: the load times stored by the
    invocation that last ran requests are returned with them.
    """
    import torch

    settings = fingerprint({"seed": seed, "H": formulas, "L": structures, "W": width, "generators": generators,
                            "relax_steps": relax_steps, "fmax": fmax, "threads": torch.get_num_threads()})
    path = out / f"{STEM}.records.jsonl" if out else None
    done = read_records(path, settings=settings) if path else {}
    if all(r in done for r in requests) and LOADS_KEY in done:
        return [done[r] for r in requests], done[LOADS_KEY]["loads"]
    loads: dict = {}
    start = time.perf_counter()
    from genms_pmg.generator import LanguageStructureGenerator

    loads["import_genms"] = time.perf_counter() - start
    generator = LanguageStructureGenerator(seed=seed, formulas=formulas, structures=structures, width=width,
                                           generators=generators, progress=False)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = generator._build_search()  # plugin construction: diffusion weights, template index, ...
    loads["build_plugins"] = time.perf_counter() - start
    start = time.perf_counter()
    search.energy_model.model  # noqa: B018 - loads the CHGNet weights
    loads["load_chgnet"] = time.perf_counter() - start
    clock = StageClock()
    instrument(search, clock)
    if warmup:
        cold = run_request(generator, clock, warmup, seed=seed, relax_steps=relax_steps, fmax=fmax)
        loads["first_request"] = {"request": warmup, "total": cold["total"], "stages": cold["stages"],
                                  "relax_seconds": cold["relax_seconds"]}
    if path:
        append_record(path, {"key": LOADS_KEY, "settings": settings, "loads": loads})
    records = []
    for request in tqdm(requests, desc="stage cost", disable=not progress):
        if request not in done:
            rec = {"key": request, "settings": settings,
                   **run_request(generator, clock, request, seed=seed, relax_steps=relax_steps, fmax=fmax)}
            if path:
                append_record(path, rec)
            done[request] = rec
        records.append(done[request])
    return records, loads


STAGE_LABELS = {
    "parse": "parse request", "propose": "propose formulae (pi_hi, incl. hard R_hi re-asks)",
    "score_formulas": "score formulae (R_hi)", "energy": "CHGNet energy + formation energy (R_lo)",
    "other": "other (tree, candidates' space groups)",
}


def summarize(records: list[dict]) -> dict:
    """Mean seconds per request per stage, and per structure where a stage handles structures."""
    stages = sorted({k for r in records for k in r["stages"]},
                    key=lambda k: (["parse", "propose", "score_formulas"].index(k) if k in ("parse", "propose", "score_formulas")
                                   else 3 if k.startswith("generate:") else 4 if k.startswith("check:")
                                   else 5 if k == "energy" else 6, k))
    rows = []
    for k in stages:
        per_request = [r["stages"].get(k, 0.0) for r in records]
        if k.startswith("generate:"):
            items = sum(r["counts"].get(k, 0) for r in records)
        elif k.startswith("check:"):
            items = sum(r["counts"]["structures"] for r in records)
        elif k == "energy":
            items = sum(r["counts"]["energy"] for r in records)
        else:
            items = None
        rows.append({"stage": k, "mean_s_per_request": float(np.mean(per_request)),
                     "s_per_structure": (sum(per_request) / items) if items else None, "structures": items,
                     "per_request": per_request})
    relax = [r["relax_seconds"] for r in records]
    return {
        "requests": len(records), "stages": rows,
        "search_total_mean": float(np.mean([r["total"] for r in records])),
        "relax_top_mean": float(np.mean(relax)),
        "relax_force_calls_mean": float(np.mean([r["relax_force_calls"] for r in records])),
        "relax_s_per_force_call": float(sum(relax) / max(1, sum(r["relax_force_calls"] for r in records))),
        "structures_mean": float(np.mean([r["counts"]["structures"] for r in records])),
    }


def plot(records: list[dict], path: Path, *, meta: dict) -> None:
    """Stacked bars: seconds per stage for each request, plus the top candidate's relaxation."""
    plt = pyplot()
    stages = sorted({k for r in records for k in r["stages"]}, key=lambda k: list(records[0]["stages"]).index(k)
                    if k in records[0]["stages"] else 99)
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(records))
    bottom = np.zeros(len(records))
    colors = plt.get_cmap("tab20").colors
    for i, k in enumerate([*stages, "relax top"]):
        vals = np.array([r["relax_seconds"] if k == "relax top" else max(0.0, r["stages"].get(k, 0.0)) for r in records])
        ax.bar(x, vals, bottom=bottom, label=k, color=colors[i % len(colors)], hatch="//" if k == "relax top" else None)
        bottom += vals
    ax.set_xticks(x, [r["family"] or "?" for r in records])
    ax.set_ylabel("seconds (warm)")
    ax.set_title(f"seconds per stage, H={meta['H']}, L={meta['L']}, W={meta['W']} (warm)", fontsize=10)
    ax.legend(fontsize=7, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def report(summary: dict, records: list[dict], loads: dict, meta: dict, command: str) -> str:
    """Markdown: per-stage table, per-request table, load times, protocol."""
    m = meta["machine"]
    lines = [
        "# Stage cost of `genms generate` on this CPU (warm)", "",
        f"Command: `{command}`", "",
        (f"What was measured: {summary['requests']} requests (below) through `LanguageStructureGenerator` with "
        f"H = {meta['H']}, L = {meta['L']}, W = {meta['W']} (`genms generate` defaults: 10, 4, 5), generators "
        f"{', '.join(meta['generators'])}, offline proposer, CHGNet 0.3.0, n = 3, seed {meta['seed']}, each followed by a "
        f"FIRE + FrechetCellFilter relaxation of the rank-1 structure (fmax {meta['fmax']} eV/Å, <= {meta['relax_steps']} "
        "steps, CHGNet forces and stress). Stage times: parse, propose, score_formulas and energy from "
        "`SearchResult.timings`; per-generator and per-R_lo-check times from timing wrappers on the plugin methods; "
        "other = `timings['total']` minus the rest. All in one process, after loading the models and one cold "
        f"warm-up request (\"{loads.get('first_request', {}).get('request', 'none')}\"), so these are warm numbers. "
        f"{m['torch_threads']} torch thread(s) on {m['cpu']} ({m['cores']} cores; the machine was shared with another "
        f"benchmark, load average at the end {m['load_average_1_5_15']})."), "",
        "| stage | mean s / request | s / structure | structures (all requests) |", "|---|---|---|---|",
    ]
    for row in summary["stages"]:
        label = STAGE_LABELS.get(row["stage"], row["stage"].replace("generate:", "generate: ").replace(
            "check:", "R_lo check: "))
        lines.append(f"| {label} | {row['mean_s_per_request']:.3f} | {fmt(row['s_per_structure'], '.4f')} | "
                     f"{row['structures'] if row['structures'] is not None else '–'} |")
    lines += [
        (f"| **search total** | **{summary['search_total_mean']:.2f}** | "
        f"{summary['search_total_mean'] / max(1e-9, summary['structures_mean']):.4f} | "
        f"{summary['structures_mean'] * summary['requests']:.0f} |"),
        (f"| relax rank-1 structure (FIRE) | {summary['relax_top_mean']:.2f} | {summary['relax_top_mean']:.2f} "
        f"({summary['relax_force_calls_mean']:.0f} force calls, {summary['relax_s_per_force_call']:.3f} s each) | 1 per request |"),
        "", "## Per request", "",
        "| request | family | search s | structures | rank 1 | E_f → relaxed (eV/atom) | relax s (force calls) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        top = r["top"]
        lines.append(f"| {r['request']} | {r['family']} | {r['total']:.1f} | {r['counts']['structures']} | "
                     f"{top['formula']} ({top['generator']}, {top['num_sites']} sites) | {fmt(top['e_form'])} → "
                     f"{fmt(top['e_form_relaxed'])} | {r['relax_seconds']:.1f} ({r['relax_force_calls']}) |")
    lines += ["", "## Loading (once per process, not in the table above)", "", "| step | seconds |", "|---|---|",
              f"| import genms_pmg.generator | {loads['import_genms']:.2f} |",
              f"| build plugins (proposer data, heuristics, diffusion weights, templates) | {loads['build_plugins']:.2f} |",
              f"| load CHGNet weights | {loads['load_chgnet']:.2f} |"]
    if "first_request" in loads:
        fr = loads["first_request"]
        lines.append(f"| first (cold) request \"{fr['request']}\": search / relax | {fr['total']:.2f} / "
                     f"{fr['relax_seconds']:.2f} |")
    lines += ["", "Loads were measured by the last invocation that ran requests (a resumed run measures them again).", "",
              f"Machine: {json.dumps(m)}", "", f"![stages]({STEM}.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", nargs="+", default=list(REQUESTS))
    parser.add_argument("--warmup", default=WARMUP_REQUEST, help="cold request run first and reported apart ('' for none)")
    parser.add_argument("--formulas", type=int, default=10, help="H (genms generate default 10)")
    parser.add_argument("--structures", type=int, default=4, help="L (default 4)")
    parser.add_argument("--width", type=int, default=5, help="W (default 5)")
    parser.add_argument("--generators", nargs="+", default=["diffusion", "templates"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relax-steps", type=int, default=300)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (genms itself leaves torch's default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    records, loads = run(requests=args.requests, seed=args.seed, formulas=args.formulas, structures=args.structures,
                         width=args.width, generators=args.generators, relax_steps=args.relax_steps, fmax=args.fmax,
                         warmup=args.warmup or None, out=args.out, progress=not args.no_progress)
    summary = summarize(records)
    meta = {"H": args.formulas, "L": args.structures, "W": args.width, "generators": args.generators, "seed": args.seed,
            "relax_steps": args.relax_steps, "fmax": args.fmax, "machine": machine_info(),
            "wall_seconds_this_invocation": time.perf_counter() - started}
    command = command_line(argv, "stage_cost.py")
    payload = {"command": command, "meta": meta, "loads": loads, "summary": summary, "requests": records}
    write_atomic(args.out / f"{STEM}.json", json.dumps(payload, indent=1) + "\n")
    plot(records, args.out / f"{STEM}.png", meta=meta)
    text = report(summary, records, loads, meta, command)
    write_atomic(args.out / f"{STEM}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
