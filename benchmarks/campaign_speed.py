"""Campaign scaling on this machine: --workers 2 against --workers 1, and scheduler overhead per unit.

    OMP_NUM_THREADS=1 python benchmarks/campaign_speed.py --out benchmarks/results/2026-12-02/campaign_speed

The same 4-request campaign runs on a fresh LocalCluster of 1 and of 2 worker processes (one thread
each; models load once per worker, before the clock starts). Overhead per unit is the wall time of
the campaign's unit phase times the workers, minus the time spent inside units, per unit. The
extrapolation to 1e5 and 1e6 candidates on 100 workers uses the measured time per unit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

REQUESTS = [{"request": "a stable spinel oxide containing Mg"}, {"request": "a rocksalt oxide"},
            {"request": "a cubic perovskite fluoride containing K"}, {"request": "a pyrochlore oxide"}]
OPTIONS = dict(seed=0, formulas=6, structures=4, width=4, generators=["templates"])


def measure(workers: int, scratch: Path) -> dict:
    from distributed import Client, LocalCluster

    from genms_pmg.campaign import Campaign, GenMSWorkerPlugin, worker_search
    from genms_pmg.generator import LanguageStructureGenerator

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           env={"OMP_NUM_THREADS": "1"})
    client = Client(cluster)
    try:
        options = {k: getattr(LanguageStructureGenerator(progress=False, **OPTIONS), k)
                   for k in ("seed", "proposer", "generators", "energy_model", "formulas", "structures", "width",
                             "relax", "relax_top", "relax_steps", "max_e_hull", "hull")}
        client.register_plugin(GenMSWorkerPlugin(options))
        client.run(worker_search, options)  # models loaded before timing, as in a long campaign
        out = scratch / f"w{workers}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        summary = Campaign(REQUESTS, out=out, client=client, n=3, progress=False, **OPTIONS).run()
        wall = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()
    units = summary["unit_seconds"]
    return {"workers": workers, "wall_s": wall, "unit_phase_s": summary["unit_phase_seconds"], "units": len(units),
            "unit_s_total": sum(units),
            "unit_s_median": statistics.median(units) if units else None,
            "answers": [[c["formula"] for c in r.get("candidates", [])] for r in summary["requests"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/genms-campaign-speed"))
    args = ap.parse_args()
    measure(2, args.scratch)  # warm-up: fills the on-disk caches (hull energies, known members) both runs share
    one = measure(1, args.scratch)
    two = measure(2, args.scratch)
    speedup = one["wall_s"] / two["wall_s"]
    # overhead: for one worker, everything beyond the time inside units is client work + scheduling
    per_unit = one["unit_s_total"] / one["units"]
    # one worker runs units back to back: the unit phase beyond the time inside units is what the
    # client, the scheduler and the transfers cost
    overhead = (one["unit_phase_s"] - one["unit_s_total"]) / one["units"]
    result = {"one_worker": one, "two_workers": two, "speedup": speedup, "unit_seconds_mean": per_unit,
              "overhead_seconds_per_unit": overhead, "overhead_share": overhead / per_unit,
              "same_answers": one["answers"] == two["answers"],
              "extrapolation_100_workers": {f"{n:.0e} candidates": {
                  "units": n / (OPTIONS["structures"]), "hours": n / OPTIONS["structures"] * (per_unit + max(overhead, 0)) / 100 / 3600}
                  for n in (1e5, 1e6)}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = ["# Campaign speed on this machine (2 cores)", "",
          f"Command: `OMP_NUM_THREADS=1 python benchmarks/campaign_speed.py --out {args.out}`", "",
          f"4 requests, H={OPTIONS['formulas']}, L={OPTIONS['structures']} (templates), W={OPTIONS['width']}, "
          "relax best 1 per formula, CHGNet; models loaded before the clock starts; a warm-up campaign first fills the "
          "on-disk caches (competing-phase energies, known members) so both runs see the same warm caches.", "",
          "| workers | wall (s) | unit phase (s) | units | time inside units (s) | median unit (s) |", "|---|---|---|---|---|---|"]
    for r in (one, two):
        md.append(f"| {r['workers']} | {r['wall_s']:.1f} | {r['unit_phase_s']:.1f} | {r['units']} | {r['unit_s_total']:.1f} "
                  f"| {r['unit_s_median']:.2f} |")
    md += ["", f"Speed-up 2 vs 1 workers: **{speedup:.2f}x**; client and scheduler overhead per unit (1 worker; "
           "the unit phase minus the time inside units): "
           f"{overhead:.2f} s = **{100 * overhead / per_unit:.1f}%** of a mean unit ({per_unit:.2f} s). Same answers "
           f"with 1 and 2 workers: {result['same_answers']}.", "",
           "On paper, 100 workers at this unit cost (L = 4 candidates per unit): "
           + "; ".join(f"{k}: {v['units']:.0f} units, {v['hours']:.1f} h" for k, v in result["extrapolation_100_workers"].items())
           + " (the paper's L = 20 puts 5x more candidates in each unit, at roughly 2-3x the unit time)."]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
