"""Stable, unique, novel: the field's judgment of a generator, with a judge that did not rank.

For each family the whole search answers "a new <family> that is not in Materials Project or ICSD";
each returned candidate is relaxed by an independent energy model (the *judge*, SevenNet by
default, a ``genms.energy_models`` plugin) and placed on the judge's own convex hull of every known
competing phase (:class:`~genms_pmg.energy.hull.CompetingPhases`). Reported per family and overall:

- stable: judge E_hull <= 0 (and <= 0.1 eV/atom, the looser criterion many papers use);
- unique: not the same structure (pymatgen ``StructureMatcher``) as a better-ranked candidate;
- novel: formula in neither the Materials Project nor the ICSD list;
- family match after the judge's relaxation; S.U.N.: stable and unique and novel at once
  (MatterGen's 38.6% is the anchor, measured on its own samples);
- Spearman correlation of the search's ranking with the judge's E_hull.

``ranking="before"`` reproduces the ranking before issue 10 (no relaxation, formation energy R_lo),
``"after"`` the default search. The judge's calibration: known OQMD-ICSD compounds on the OQMD hull
and 0.1-0.3 eV/atom above it, of the families' stoichiometries, each relaxed and judged with its
own formula left out of the hull, by the judge and by the ranking model; the fraction each
classifies right at several bounds is how the default bound was chosen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from tqdm.auto import tqdm

from genms_pmg.errors import UsageError
from genms_pmg.evaluation.families import (
    DEFAULT_FAMILIES,
    _fingerprint,
    family_name,
)
from genms_pmg.evaluation.records import append_record, read_records
from genms_pmg.knowledge.families import FAMILIES

SUN_FAMILIES = (*DEFAULT_FAMILIES, "garnet")
REQUEST = "a new {name} that is not in Materials Project or ICSD"
RANKINGS = ("before", "after")
THRESHOLDS = (0.0, 0.025, 0.05, 0.1)
MATTERGEN_SUN = 0.386


def request_for(key: str) -> str:
    return REQUEST.format(name=family_name(key))


def _generator(ranking: str, *, seed: int, formulas: int, structures: int, width: int, energy_model: str,
               relax_top: int):
    from genms_pmg.generator import LanguageStructureGenerator

    if ranking == "before":  # no relaxation, no hull: formation energy ranks, as before issue 10
        return LanguageStructureGenerator(seed=seed, formulas=formulas, structures=structures, width=width,
                                          progress=False, relax=False, hull=False, energy_model=energy_model)
    return LanguageStructureGenerator(seed=seed, formulas=formulas, structures=structures, width=width,
                                      progress=False, energy_model=energy_model, relax_top=relax_top)


def _search_record(generator, key: str, ranking: str, *, samples: int, out: Path, tag: str) -> dict:
    from genms_pmg.outputs import write_cif

    text = request_for(key)
    start = time.perf_counter()
    try:
        result = generator.search(text, samples)
    except UsageError as err:
        return {"kind": "search", "family": key, "ranking": ranking, "settings": tag, "error": str(err),
                "candidates": [], "seconds": time.perf_counter() - start}
    folder = out / "cifs" / ranking / key
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for cand in result.candidates:
        path = folder / f"rank{cand.rank:02d}-{cand.structure.composition.reduced_formula}.cif"
        write_cif(cand.structure, path)
        rows.append({"rank": cand.rank, "formula": cand.structure.composition.reduced_formula,
                     "structure": cand.structure.as_dict(), "file": str(path.relative_to(out)),
                     "e_hull_model": cand.scores.get("e_above_hull"), "e_form_model": cand.scores.get("e_form_per_atom"),
                     "relaxed_by_search": cand.scores.get("relaxed"), "generator": cand.provenance.get("generator"),
                     "space_group": cand.scores.get("space_group")})
    return {"kind": "search", "family": key, "ranking": ranking, "settings": tag, "candidates": rows,
            "seconds": time.perf_counter() - start, "timings": result.timings}


def judge_structures(structures: Sequence[Structure], judge, *, steps: int, exclude: Sequence[Sequence[str]] | None = None) -> list[dict]:
    """Relax each structure with the judge and place it on the judge's hull (``exclude``: formulas
    left out of each structure's hull, e.g. its own for a calibration)."""
    from genms_pmg.energy.hull import competing_phases
    from genms_pmg.energy.relax import relax_many

    phases = competing_phases(judge)
    out = []
    for i, structure in enumerate(structures):
        start = time.perf_counter()
        result = relax_many([structure], judge, steps=steps)[0]
        row = {"judge_relax_steps": result.steps, "judge_converged": result.converged, "judge_seconds": None,
               "judge_e_hull": None, "judge_decomposition": None, "relaxed": result.structure}
        if math.isfinite(result.energy_per_atom):
            corrected = float(judge.corrected_energy_per_atom([result.structure], [result.energy_per_atom])[0])
            view = phases.without(exclude[i]) if exclude else phases
            try:
                hull = view.evaluate(result.structure.composition, corrected)
                row.update(judge_e_hull=hull.e_above_hull, judge_decomposition=hull.decomposition,
                           judge_e_form=hull.e_form_per_atom)
            except Exception as exc:  # noqa: BLE001 - no reference for an element
                row["judge_error"] = str(exc).splitlines()[0]
        row["judge_seconds"] = time.perf_counter() - start
        out.append(row)
    return out


def _judge_record(key: str, ranking: str, search: dict, judge, *, steps: int, tag: str) -> dict:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from genms_pmg.data.known import KnownFormulaIndex
    from genms_pmg.structures.family_match import match_family

    index = KnownFormulaIndex.default()
    structures = [Structure.from_dict(c["structure"]) for c in search["candidates"]]
    judged = judge_structures(structures, judge, steps=steps)
    matcher = StructureMatcher()
    rows = []
    for i, (cand, j) in enumerate(zip(search["candidates"], judged)):
        relaxed = j.pop("relaxed")
        unique = not any(matcher.fit(structures[i], structures[k]) for k in range(i))
        rows.append({"rank": cand["rank"], "formula": cand["formula"], "e_hull_model": cand["e_hull_model"],
                     "e_form_model": cand["e_form_model"], "generator": cand["generator"],
                     "novel": not index.is_known(cand["formula"], sources=("mp", "icsd")), "unique": unique,
                     "match": match_family(relaxed, key), **j})
    return {"kind": "judge", "family": key, "ranking": ranking, "settings": tag, "rows": rows}


def calibration_set(*, n_stable: int, n_unstable: int, seed: int, max_sites: int = 30) -> list:
    """OQMD-ICSD rows of the families' stoichiometries: ``n_stable`` on the OQMD hull and
    ``n_unstable`` 0.1-0.3 eV/atom above it (seeded draw)."""
    from genms_pmg.data.oqmd import ReferenceStructureDB

    db = ReferenceStructureDB.default()
    anonymous = {label.split("_")[0] for key in SUN_FAMILIES for label in FAMILIES[key].oqmd_prototypes}
    pool = sorted((r for a in anonymous for r in db.candidates(a) if r.nsites <= max_sites and r.stability is not None),
                  key=lambda r: r.id)
    stable = [r for r in pool if r.stability <= 0.0]
    unstable = [r for r in pool if 0.1 <= r.stability <= 0.3]
    rng = np.random.default_rng(seed)
    pick = lambda rows, n: [rows[i] for i in sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False))]  # noqa: E731
    return pick(stable, n_stable) + pick(unstable, n_unstable)


def _calibration_record(model, rows: list, *, steps: int, tag: str, progress: bool) -> dict:
    from genms_pmg.data.oqmd import ReferenceStructureDB

    db = ReferenceStructureDB.default()
    out = []
    for r in tqdm(rows, desc=f"calibration ({model.name})", disable=not progress, leave=False):
        j = judge_structures([db.structure(r.id)], model, steps=steps, exclude=[[r.formula]])[0]
        j.pop("relaxed")
        out.append({"formula": r.formula, "name": r.name, "oqmd_e_hull": r.stability, **j})
    return {"kind": "calibration", "model": model.name, "settings": tag, "rows": out}


def run_sun_benchmark(
    families: Sequence[str] = SUN_FAMILIES,
    *,
    out: str | Path,
    judge: str = "sevennet",
    rankings: Sequence[str] = RANKINGS,
    energy_model: str = "chgnet",
    samples: int = 5,
    seed: int = 0,
    formulas: int = 20,
    structures: int = 4,
    width: int = 10,
    relax_steps: int = 200,
    relax_top: int = 2,
    calibration: tuple[int, int] = (40, 20),
    progress: bool = True,
) -> dict:
    """Searches, judge relaxations and calibration, each appended to ``out/records.jsonl`` (resumes)."""
    from genms_pmg import plugins

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for key in families:
        family_name(key)
    for ranking in rankings:
        if ranking not in RANKINGS:
            raise UsageError(f"unknown ranking {ranking!r}; choose from {', '.join(RANKINGS)}")
    settings = {"samples": samples, "seed": seed, "formulas": formulas, "structures": structures, "width": width,
                "judge": judge, "energy_model": energy_model, "relax_steps": relax_steps, "relax_top": relax_top}
    tag = _fingerprint(settings)
    records_path = out / "records.jsonl"
    records = read_records(records_path)
    if {r.get("settings") for r in records} - {tag}:
        raise UsageError(f"{records_path} holds results made with other settings; use another --out folder "
                         "or delete records.jsonl to start over")
    done = {(r["kind"], r.get("family", ""), r.get("ranking", ""), r.get("model", "")): r for r in records}
    judge_model = plugins.create("energy_models", judge)
    for ranking in rankings:
        generator = None
        for key in tqdm(families, desc=f"families ({ranking})", disable=not progress):
            if ("search", key, ranking, "") not in done:
                generator = generator or _generator(ranking, seed=seed, formulas=formulas, structures=structures,
                                                    width=width, energy_model=energy_model, relax_top=relax_top)
                done[("search", key, ranking, "")] = _search_record(generator, key, ranking, samples=samples,
                                                                    out=out, tag=tag)
                append_record(records_path, done[("search", key, ranking, "")])
            if ("judge", key, ranking, "") not in done:
                done[("judge", key, ranking, "")] = _judge_record(key, ranking, done[("search", key, ranking, "")],
                                                                  judge_model, steps=relax_steps, tag=tag)
                append_record(records_path, done[("judge", key, ranking, "")])
    if calibration and sum(calibration):
        rows = calibration_set(n_stable=calibration[0], n_unstable=calibration[1], seed=seed)
        for model_name in dict.fromkeys([energy_model, judge]):
            if ("calibration", "", "", model_name) not in done:
                model = judge_model if model_name == judge else plugins.create("energy_models", model_name)
                done[("calibration", "", "", model_name)] = _calibration_record(model, rows, steps=relax_steps,
                                                                                tag=tag, progress=progress)
                append_record(records_path, done[("calibration", "", "", model_name)])
    summary = summarize(list(done.values()), families, rankings)
    summary["settings"] = settings
    return summary


def _rates(rows: list[dict]) -> dict:
    n = len(rows)
    if not n:
        return {"n": 0}
    hull = [r.get("judge_e_hull") for r in rows]
    stable0 = [h is not None and h <= 0.0 for h in hull]
    stable01 = [h is not None and h <= 0.1 for h in hull]
    return {
        "n": n,
        "stable": sum(stable0) / n, "stable_0.1": sum(stable01) / n,
        "unique": sum(r["unique"] for r in rows) / n, "novel": sum(r["novel"] for r in rows) / n,
        "match": sum(r["match"] is not None for r in rows) / n,
        "sun": sum(s and r["unique"] and r["novel"] for s, r in zip(stable0, rows)) / n,
        "sun_0.1": sum(s and r["unique"] and r["novel"] for s, r in zip(stable01, rows)) / n,
        "median_judge_e_hull": float(np.median([h for h in hull if h is not None])) if any(h is not None for h in hull) else None,
    }


def _spearman(rows: list[dict], key: str) -> float | None:
    from scipy.stats import spearmanr

    pairs = [(r[key], r["judge_e_hull"]) for r in rows if r.get(key) is not None and r.get("judge_e_hull") is not None]
    if len(pairs) < 3:
        return None
    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return None if rho != rho else float(rho)


def _calibration_summary(rows: list[dict]) -> dict:
    judged = [r for r in rows if r.get("judge_e_hull") is not None]
    on = [r for r in judged if r["oqmd_e_hull"] <= 0.0]
    above = [r for r in judged if r["oqmd_e_hull"] >= 0.1]
    out = {"n_on_hull": len(on), "n_above": len(above), "n_failed": len(rows) - len(judged), "thresholds": {}}
    for t in THRESHOLDS:
        right_on = sum(r["judge_e_hull"] <= t for r in on)
        right_above = sum(r["judge_e_hull"] > t for r in above)
        out["thresholds"][str(t)] = {
            "on_hull_right": right_on / len(on) if on else None,
            "above_right": right_above / len(above) if above else None,
            "accuracy": (right_on + right_above) / len(judged) if judged else None,
            "balanced_accuracy": ((right_on / len(on)) + (right_above / len(above))) / 2 if on and above else None,
        }
    return out


def summarize(records: list[dict], families: Sequence[str], rankings: Sequence[str] = RANKINGS) -> dict:
    """Rates per family and overall for each ranking, Spearman, calibration."""
    summary: dict = {"rankings": {}, "calibration": {}}
    for ranking in rankings:
        per_family, pooled = {}, []
        for key in families:
            rec = next((r for r in records if r["kind"] == "judge" and r["family"] == key and r["ranking"] == ranking), None)
            search = next((r for r in records if r["kind"] == "search" and r["family"] == key and r["ranking"] == ranking), None)
            rows = rec["rows"] if rec else []
            pooled += rows
            per_family[key] = {**_rates(rows), "spearman_rank": _spearman(rows, "rank"),
                               "error": (search or {}).get("error"), "seconds": (search or {}).get("seconds")}
        score_key = "e_hull_model" if ranking == "after" else "e_form_model"
        summary["rankings"][ranking] = {
            "families": per_family, "overall": _rates(pooled),
            "spearman_rank_pooled": _spearman(pooled, "rank"),
            "spearman_score_pooled": _spearman(pooled, score_key), "score": score_key,
        }
    for r in records:
        if r["kind"] == "calibration":
            summary["calibration"][r["model"]] = _calibration_summary(r["rows"])
    return summary


__all__ = ["SUN_FAMILIES", "calibration_set", "judge_structures", "run_sun_benchmark", "summarize"]
