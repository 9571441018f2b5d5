"""Crystal structure prediction benchmark: given a composition, is the known structure among the samples?

The protocol follows DiffCSP (Jiao et al. 2023): for each reference structure, K structures are
generated for its exact cell composition; a sample matches when pymatgen's
``StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)`` maps it onto the reference, and RMSE is
the matcher's normalised RMS displacement (by (V/N)^(1/3)) averaged over matched rows (for @K, the
best matched sample of each row). @1 is reported twice: for the first sample, and for the sample
the energy model ranks first, which is how the search uses generators.

Leave-formula-out: the template generator excludes every reference whose reduced formula is in the
benchmark set, so it cannot copy the answer. Results are appended per (generator, row) to a JSONL
file so an interrupted run resumes and generators can be added later.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from tqdm.auto import tqdm

from genms_pmg.evaluation.records import append_record, read_records
from genms_pmg.structures.base import CrystalGenerator

__all__ = [
    "BenchmarkRow",
    "generate_for_row",
    "load_benchmark_rows",
    "make_csp_generator",
    "make_matcher",
    "relax_top_samples",
    "run_csp_benchmark",
    "score_samples",
    "summarize",
    "training_prototypes",
    "unseen_prototype_rows",
]

MATCHER_SETTINGS = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10}
#: ``diffusion``: the model alone, its space-group conditions (a conditional model) drawn from the
#: training split's groups for the stoichiometry type; ``diffusion-uncond``: no condition at all;
#: ``diffusion-sg``: told the reference's space group (a conditional model; DiffCSP++'s setting); ``diffusion-wyckoff``: on the Wyckoff skeletons of leave-formula-out
#: templates with the reference's atom count (diffusion chooses free coordinates and lattice).
DIFFUSION_VARIANTS = ("diffusion", "diffusion-uncond", "diffusion-sg", "diffusion-wyckoff")


@dataclass
class BenchmarkRow:
    """One reference structure of the benchmark."""

    index: int
    row_id: str
    structure: Structure
    prototype: str | None = None

    @property
    def formula(self) -> str:
        return self.structure.composition.reduced_formula

    @functools.cached_property
    def space_group(self) -> int:
        """spglib's space group of the reference at the tolerance the conditional model was trained with."""
        from genms_pmg.structures.diffusion.representation import space_group_number

        return space_group_number(self.structure)


def load_benchmark_rows(path: str | Path, *, limit: int | None = None, max_atoms: int = 20) -> list[BenchmarkRow]:
    """The first ``limit`` rows of a CSV(.gz) with a ``cif`` column, up to ``max_atoms`` sites each
    (with the OQMD prototype label when the CSV has a ``proto_name`` column)."""
    from genms_pmg.structures.diffusion.representation import load_structures_csv

    structures = load_structures_csv(path, max_atoms=max_atoms, limit=limit, keep_columns=("proto_name",))
    return [BenchmarkRow(i, f"{Path(path).name}:{i}", s, s.properties.pop("proto_name", None) or None)
            for i, s in enumerate(structures)]


def training_prototypes(path: str | Path) -> frozenset[str]:
    """Every OQMD prototype label (``proto_name``) in a training CSV(.gz)."""
    import csv
    import gzip

    csv.field_size_limit(1 << 30)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "proto_name" not in reader.fieldnames:
            raise ValueError(f"{path} has no 'proto_name' column, so unseen prototypes cannot be told apart")
        return frozenset(row["proto_name"] for row in reader if row.get("proto_name"))


def unseen_prototype_rows(rows: Sequence[BenchmarkRow], seen: frozenset[str]) -> list[BenchmarkRow]:
    """Rows whose prototype never occurs in training: no template of the same structure type exists
    there and the diffusion model never saw one, so a hit means generalising to a new structure type."""
    return [r for r in rows if r.prototype and r.prototype not in seen]


def make_matcher():
    """The matcher of DiffCSP/CDVAE and the issue: stol 0.5, ltol 0.3, angle_tol 10."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**MATCHER_SETTINGS)


def make_csp_generator(name: str, *, exclude_formulas: Iterable[str] = (), diffusion_weights: str | Path | None = None,
                       diffusion_steps: int = 100, diffusion_sampler: str = "full") -> tuple[CrystalGenerator, dict]:
    """Build a generator for the benchmark and the settings that identify its results."""
    if name == "templates":
        from genms_pmg.structures.templates import TemplateGenerator

        excluded = sorted(set(exclude_formulas))
        digest = hashlib.sha256("\n".join(excluded).encode()).hexdigest()[:16]
        return TemplateGenerator(exclude_formulas=excluded), {"excluded_formulas": len(excluded), "exclude_sha": digest}
    if name == "random":
        from genms_pmg.structures.random_symmetric import RandomSymmetricGenerator

        return RandomSymmetricGenerator(), {}
    if name in DIFFUSION_VARIANTS:
        from genms_pmg.structures.diffusion.generator import (
            DEFAULT_WEIGHTS,
            DiffusionGenerator,
        )

        weights = Path(diffusion_weights) if diffusion_weights else DEFAULT_WEIGHTS
        options: dict = {"steps": diffusion_steps, "sampler": diffusion_sampler}
        if name == "diffusion-wyckoff":
            from genms_pmg.structures.templates import TemplateGenerator

            excluded = sorted(set(exclude_formulas))
            options |= {"symmetry": "skeleton", "templates": TemplateGenerator(exclude_formulas=excluded),
                        "max_skeletons": 3}
        else:
            options["symmetry"] = "free"
        if name == "diffusion-uncond":  # no space group for any sample: the model's own p(structure | composition)
            options["space_group_prior"] = None
        gen = DiffusionGenerator(weights=weights, **options)  # type: ignore[arg-type]
        if name == "diffusion-sg" and not gen.conditional:
            from genms_pmg.errors import UsageError

            raise UsageError(f"{weights} is not space-group conditional, so diffusion-sg would equal diffusion; "
                             "train one with genms train-diffusion --space-groups or drop diffusion-sg")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        settings = {"weights_sha": digest, "steps": diffusion_steps, "sampler": diffusion_sampler}
        if gen.space_group_prior is not None and name != "diffusion-sg":
            prior = json.dumps(gen.space_group_prior.as_dict(), sort_keys=True).encode()
            settings |= {"prior_sha": hashlib.sha256(prior).hexdigest()[:16],
                         "unconditional_share": gen.unconditional_share}
        if name == "diffusion-wyckoff":
            settings["exclude_sha"] = hashlib.sha256("\n".join(sorted(set(exclude_formulas))).encode()).hexdigest()[:16]
        return gen, settings
    from genms_pmg.plugins import create

    return create("structure_generators", name), {}


def generate_for_row(generator: CrystalGenerator, row: BenchmarkRow, *, k: int, seed: int,
                     row_space_group: bool = False) -> tuple[list[Structure], float]:
    """K structures for the row's exact cell (``generate_cell`` when the generator has it) and the seconds taken;
    ``row_space_group`` tells the generator the reference's space group (``diffusion-sg``)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if row_space_group:
            made = generator.generate_cell(row.structure.composition, n=k, seed=seed, space_group=row.space_group)
        elif hasattr(generator, "generate_cell"):
            made = generator.generate_cell(row.structure.composition, n=k, seed=seed)
        else:  # whole-cell control is not part of the plugin API: cap the size at the reference's
            made = generator.generate(row.structure.composition.reduced_composition, n=k, seed=seed,
                                      max_atoms=len(row.structure))
    return [g.structure for g in made][:k], time.perf_counter() - start


@functools.lru_cache(maxsize=65536)
def composition_valid(formula: str) -> bool:
    """SMACT validity as DiffCSP counts it (charge neutral + Pauling test; alloys pass)."""
    from smact.screening import smact_validity

    try:
        return bool(smact_validity(formula, use_pauling_test=True, include_alloys=True))
    except Exception:  # noqa: BLE001 - an element SMACT has no data for is not valid
        return False


def score_samples(row: BenchmarkRow, samples: Sequence[Structure], *, matcher, energy_model=None) -> list[dict]:
    """Validity, match RMS (None when unmatched) and energy per atom of each sample."""
    from genms_pmg.structures.heuristics import shortest_distance

    energies = [None] * len(samples)
    records = []
    for s in samples:
        try:
            dmin = shortest_distance(s)[0]
        except Exception:  # noqa: BLE001 - a degenerate cell is simply invalid
            dmin = 0.0
        valid = bool(dmin > 0.5)
        comp_valid = composition_valid(s.composition.reduced_formula)
        rms = None
        if valid and s.composition.reduced_composition == row.structure.composition.reduced_composition:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    found = matcher.get_rms_dist(s, row.structure)
                except Exception:  # noqa: BLE001 - matcher failures on odd cells count as no match
                    found = None
            rms = None if found is None else float(found[0])
        records.append({"valid": valid, "comp_valid": comp_valid, "rms": rms, "min_distance": round(float(dmin), 4)})
    if energy_model is not None and samples:
        ok = [i for i, r in enumerate(records) if r["valid"]]
        if ok:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = energy_model.predict_energy_per_atom([samples[i] for i in ok])
            for i, e in zip(ok, values):
                energies[i] = None if not np.isfinite(e) else float(e)
    for r, e in zip(records, energies):
        r["energy"] = e
    return records


def relax_top_samples(row: BenchmarkRow, samples: Sequence[Structure], records: list[dict], *, matcher, energy_model,
                      top: int, steps: int = 200, fmax: float = 0.1) -> None:
    """Relax the ``top`` lowest-energy valid samples with the energy model and match them again.

    Adds ``relaxed_energy`` and ``relaxed_rms`` to those sample records (in place): the
    literature's CSP numbers are unrelaxed, the search's are after relaxation, so both are kept.
    """
    from genms_pmg.energy.relax import relax_many

    ranked = sorted((i for i, r in enumerate(records) if r["valid"] and r.get("energy") is not None),
                    key=lambda i: records[i]["energy"])[:top]
    if not ranked:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = relax_many([samples[i] for i in ranked], energy_model, fmax=fmax, steps=steps)
    for i, result in zip(ranked, results):
        energy = result.energy_per_atom
        rms = None
        if np.isfinite(energy):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    found = matcher.get_rms_dist(result.structure, row.structure)
                except Exception:  # noqa: BLE001 - matcher failures count as no match
                    found = None
            rms = None if found is None else float(found[0])
        records[i]["relaxed_energy"] = float(energy) if np.isfinite(energy) else None
        records[i]["relaxed_rms"] = rms


def _energy_first(samples: list[dict]) -> dict | None:
    ranked = [s for s in samples if s["valid"] and s.get("energy") is not None]
    return min(ranked, key=lambda s: s["energy"]) if ranked else None


def _metrics(per_row: list[list[dict]], *, seconds: float = 0.0) -> dict:
    """Aggregate per-row sample lists (rows without samples count as misses)."""
    n_rows = len(per_row)
    flat = [s for row in per_row for s in row]
    first = [row[0] if row else None for row in per_row]
    best = [_energy_first(row) for row in per_row]
    any_rms = [min((s["rms"] for s in row if s["rms"] is not None), default=None) for row in per_row]

    def rate(xs):
        return sum(x is not None for x in xs) / n_rows if n_rows else 0.0

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return float(np.mean(xs)) if xs else None

    relaxed = [[s for s in row if "relaxed_energy" in s] for row in per_row]
    relaxed_first = [min((s for s in row if s["relaxed_energy"] is not None), key=lambda s: s["relaxed_energy"],
                         default=None) for row in relaxed]
    relaxed_any = [min((s["relaxed_rms"] for s in row if s["relaxed_rms"] is not None), default=None) for row in relaxed]
    extra = {}
    if any(relaxed):
        extra = {
            "relaxed_per_row": max(len(r) for r in relaxed),
            "match@1_energy_relaxed": rate([b["relaxed_rms"] if b else None for b in relaxed_first]),
            "rmse@1_energy_relaxed": mean([b["relaxed_rms"] if b else None for b in relaxed_first]),
            "match@relaxed": rate(relaxed_any),
        }
    return extra | {
        "rows": n_rows,
        "structures": len(flat),
        "structural_validity": float(np.mean([s["valid"] for s in flat])) if flat else 0.0,
        "composition_validity": float(np.mean([s["comp_valid"] for s in flat])) if flat else 0.0,
        "match@1": rate([f["rms"] if f else None for f in first]),
        "rmse@1": mean([f["rms"] if f else None for f in first]),
        "match@1_energy": rate([b["rms"] if b else None for b in best]),
        "rmse@1_energy": mean([b["rms"] if b else None for b in best]),
        "match@K": rate(any_rms),
        "rmse@K": mean(any_rms),
        "seconds_per_structure": seconds / len(flat) if flat else None,
    }


def summarize(records: list[dict], generators: Sequence[str], row_ids: Sequence[str]) -> dict:
    """Per-generator metrics plus the union of all generators under energy ranking."""
    by_key = {(r["generator"], r["row_id"]): r for r in records}
    out: dict[str, dict] = {}
    for g in generators:
        rows = [by_key.get((g, rid), {}).get("samples", []) for rid in row_ids]
        seconds = sum(by_key.get((g, rid), {}).get("seconds", 0.0) for rid in row_ids)
        out[g] = _metrics(rows, seconds=seconds)
    if len(generators) > 1:
        union_rows = [[s for g in generators for s in by_key.get((g, rid), {}).get("samples", [])] for rid in row_ids]
        union = _metrics(union_rows)
        union["match@1"] = union["rmse@1"] = None  # "first sample" has no meaning across generators
        union["seconds_per_structure"] = None
        out["union"] = union
    return out


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_csp_benchmark(
    rows: Sequence[BenchmarkRow],
    generators: Sequence[str],
    *,
    k: int = 20,
    seed: int = 0,
    records_path: str | Path | None = None,
    energy_model=None,
    diffusion_weights: str | Path | None = None,
    diffusion_steps: int = 100,
    diffusion_sampler: str = "full",
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
    relax_top: int = 0,
) -> tuple[dict, list[dict]]:
    """Run the benchmark; returns (summary, records).

    Args:
        rows: reference structures.
        generators: generator names (``diffusion``, ``templates``, ``random`` or any plugin).
        k: samples per row and generator.
        seed: base seed; row i uses ``seed * 1_000_003 + i`` so rows are independent and reproducible.
        records_path: JSONL file of finished (generator, row) records; existing records with the
            same settings are reused (resume), new ones are appended as they finish.
        energy_model: ranks samples for the energy-ranked @1 (None skips that metric).
        relax_top: relax this many lowest-energy samples per row with ``energy_model`` and report
            the match of the lowest relaxed energy (``match@1_energy_relaxed``) and of any relaxed
            sample (``match@relaxed``); 0 skips relaxation (the literature's unrelaxed protocol).
    """
    if relax_top and energy_model is None:
        raise ValueError("relax_top needs an energy model")
    exclude = sorted({r.formula for r in rows})
    matcher = make_matcher()
    done: dict[tuple[str, str, str], dict] = {}
    path = Path(records_path) if records_path else None
    if path is not None:
        for rec in read_records(path):
            if {"generator", "row_id", "settings"} <= rec.keys():
                done[(rec["generator"], rec["row_id"], rec["settings"])] = rec
    records: list[dict] = []
    for name in generators:
        generator, options = make_csp_generator(
            name, exclude_formulas=exclude, diffusion_weights=diffusion_weights,
            diffusion_steps=diffusion_steps, diffusion_sampler=diffusion_sampler,
        )
        fingerprint = {"generator": name, "k": k, "seed": seed, "energy": energy_model is not None, **options}
        if relax_top:
            fingerprint["relax_top"] = relax_top
        settings = _fingerprint(fingerprint)
        for row in tqdm(rows, desc=f"csp {name}", disable=not progress):
            key = (name, row.row_id, settings)
            if key in done:
                records.append(done[key])
                continue
            samples, seconds = generate_for_row(generator, row, k=k, seed=seed * 1_000_003 + row.index,
                                                row_space_group=name == "diffusion-sg")
            scored = score_samples(row, samples, matcher=matcher, energy_model=energy_model)
            if relax_top:
                relax_top_samples(row, samples, scored, matcher=matcher, energy_model=energy_model, top=relax_top)
            rec = {
                "generator": name, "row_id": row.row_id, "settings": settings, "formula": row.formula,
                "natoms": len(row.structure), "seconds": seconds, "samples": scored,
            }
            records.append(rec)
            if path is not None:
                append_record(path, rec)
            if on_record is not None:
                on_record(rec)
    return summarize(records, generators, [r.row_id for r in rows]), records


def plot_summary(summary: dict, path: str | Path) -> None:
    """Bar chart of match@1 (first / energy-ranked) and match@K per generator, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    keys = [("match@1", "@1 first sample"), ("match@1_energy", "@1 energy-ranked"), ("match@K", "@K any sample")]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.6))
    for j, (key, label) in enumerate(keys):
        vals = [100 * (summary[n].get(key) or 0.0) for n in names]
        bars = ax.bar(x + (j - 1) * 0.27, vals, 0.27, label=label)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(x, names)
    ax.set_ylabel("match rate (%)")
    rows = next(iter(summary.values()))["rows"] if summary else 0
    ax.set_title(f"CSP match rate, {rows} structures")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=130)
    plt.close(fig)
    os.replace(tmp, path)


def format_table(summary: dict) -> str:
    """Markdown table of the summary."""
    cols = [("structural_validity", "valid struct"), ("composition_validity", "valid comp"), ("match@1", "match@1"),
            ("rmse@1", "RMSE@1"), ("match@1_energy", "match@1 (energy)"), ("rmse@1_energy", "RMSE@1 (energy)"),
            ("match@K", "match@K"), ("rmse@K", "RMSE@K"), ("seconds_per_structure", "s/structure")]
    if any("match@1_energy_relaxed" in m for m in summary.values()):
        cols[-1:-1] = [("match@1_energy_relaxed", "match@1 (energy, relaxed)"),
                       ("rmse@1_energy_relaxed", "RMSE@1 (relaxed)"), ("match@relaxed", "match@relaxed")]
    lines = ["| generator | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in summary.items():
        cells = []
        for key, _ in cols:
            v = m.get(key)
            if v is None:
                cells.append("–")
            elif key.startswith(("match", "structural", "composition")):
                cells.append(f"{100 * v:.1f}%")
            elif key.startswith("rmse"):
                cells.append(f"{v:.4f}")
            else:
                cells.append(f"{v:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
