"""Sampling speed of the shipped diffusion model on this machine: structures per second at batch 64.

Timed on the cells of the first 64 validation structures (real compositions and sizes, 1-20 atoms):
the fast deterministic DDIM sampler (50 steps, the search's default) padded to 20 atoms as the first
model did, the same cells in atom-count buckets of 16, with
classifier-free guidance (two network passes per step) when the model is conditional, on a Wyckoff
skeleton (spinel, 14 atoms; garnet, 80 atoms), the generator's default (predictor-corrector, 100
steps, one corrector step each: 200 network calls, in buckets of 16), and the predictor-corrector
sampler with Table 8's 256 steps (512 network calls). The best of ``--repeats`` runs is
reported, after one warm-up batch.

    python benchmarks/diffusion_sampling_speed.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import torch
from pymatgen.core import Composition

from genms_pmg.structures.diffusion.generator import DEFAULT_WEIGHTS, DiffusionGenerator
from genms_pmg.structures.diffusion.representation import load_structures_csv

RESULTS = Path(__file__).resolve().parent / "results"
VAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "oqmd_icsd" / "val.csv.gz"


def best_time(run, *, repeats: int) -> float:
    """Best wall time (s) of ``run(seed)`` after one warm-up call."""
    run(0)
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        run(r + 1)
        best = min(best, time.perf_counter() - start)
    return best


def padded(gen: DiffusionGenerator, cells: list[list[int]], seed: int) -> None:
    """The first model's way: one batch, every cell padded to the 20-atom training size."""
    numbers = torch.zeros(len(cells), 20, dtype=torch.long)
    for i, row in enumerate(cells):
        numbers[i, : len(row)] = torch.as_tensor(row)
    gen.model.sample(numbers, numbers > 0, steps=gen.steps, sampler=gen.sampler, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--no-full", action="store_true", help="skip the slow 256-step predictor-corrector row")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = load_structures_csv(VAL_CSV, limit=args.batch)
    cells = [sorted(site.specie.Z for site in s) for s in structures]
    rows = []

    def record(label: str, sampler: str, steps: int, calls: int, count: int, seconds: float, atoms: float) -> None:
        rows.append({"setting": label, "sampler": sampler, "steps": steps, "network_calls": calls, "batch": count,
                     "mean_atoms": round(atoms, 1), "seconds": round(seconds, 3),
                     "structures_per_second": round(count / seconds, 2), "seconds_per_structure": round(seconds / count, 4)})
        print(rows[-1], flush=True)

    mean_atoms = sum(map(len, cells)) / len(cells)
    gen = DiffusionGenerator(weights=args.weights, steps=50, sampler="ddim", batch_size=16, symmetry="free")
    record("padded to 20 atoms, one batch", "ddim", 50, 50, len(cells),
           best_time(lambda seed: padded(gen, cells, seed), repeats=args.repeats), mean_atoms)
    record("atom-count buckets of 16", "ddim", 50, 50, len(cells),
           best_time(lambda seed: gen._sample(cells, seed=seed, z_list=[1] * len(cells)), repeats=args.repeats), mean_atoms)
    if gen.conditional:
        guided = DiffusionGenerator(weights=args.weights, steps=50, batch_size=16, symmetry="free", guidance=1.0)
        record("buckets + space group, guidance w=1", "ddim", 50, 100, len(cells),
               best_time(lambda seed: guided._sample(cells, seed=seed, z_list=[1] * len(cells), space_group=225),
                         repeats=args.repeats), mean_atoms)
    skeleton_gen = DiffusionGenerator(weights=args.weights, steps=50, batch_size=64, max_skeletons=1, symmetry="auto")
    for formula, family, count in (("MgAl2O4", "spinel", len(cells)), ("Ca3Al2Si3O12", "garnet", 16)):
        skeleton, _ = skeleton_gen.skeletons(Composition(formula), n=1, family=family)[0]
        sample = [skeleton.atomic_numbers] * count
        seconds = best_time(lambda seed: skeleton_gen._sample(sample, seed=seed, z_list=[1] * count, project=skeleton,
                                                              space_group=skeleton.space_group), repeats=args.repeats)
        record(f"{family} Wyckoff skeleton ({formula}, space group {skeleton.space_group})", "ddim", 50, 50, count,
               seconds, len(skeleton))
    default = DiffusionGenerator(weights=args.weights, batch_size=16, symmetry="free")  # the search's sampler
    record("default: atom-count buckets of 16", default.sampler, default.steps, 2 * default.steps, len(cells),
           best_time(lambda seed: default._sample(cells, seed=seed, z_list=[1] * len(cells)), repeats=args.repeats),
           mean_atoms)
    if not args.no_full:
        full = DiffusionGenerator(weights=args.weights, steps=256, sampler="full", batch_size=64, symmetry="free")
        record("Table 8's 256 steps, one batch padded to its largest cell", "full", 256, 512, len(cells),
               best_time(lambda seed: full._sample(cells, seed=seed, z_list=[1] * len(cells)), repeats=args.repeats),
               mean_atoms)
    params = sum(p.numel() for p in gen.model.network.parameters())
    meta = {"cpu": platform.processor() or platform.machine(), "threads": args.threads, "torch": torch.__version__,
            "parameters": params, "weights": str(args.weights)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diffusion_sampling_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# Diffusion sampling speed (CPU)", "",
        f"Model {args.weights.name} ({params / 1e6:.2f}M parameters), {args.threads} torch threads, torch "
        f"{torch.__version__}, best of {args.repeats}. Command: `python benchmarks/diffusion_sampling_speed.py "
        f"--threads {args.threads}`.", "",
        "| setting | sampler | steps | network calls | structures | mean atoms | seconds | structures / s | s / structure |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['setting']} | {r['sampler']} | {r['steps']} | {r['network_calls']} | {r['batch']} | "
                     f"{r['mean_atoms']} | {r['seconds']:.2f} | {r['structures_per_second']:.1f} | {r['seconds_per_structure']:.4f} |")
    lines += ["", "Target (issue 12): at least 5 structures/s at batch 64 on this CPU. "
              "Anchor: DiffCSP samples at about 0.38 s per structure on a GPU."]
    (RESULTS / "diffusion_sampling_speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
