"""The paper's end-to-end evaluation (Table 1, appendix A.1), run on any crystal families.

For each family, the full search answers two phrasings of "a stable <family> that is not in
Materials Project"; every structure it returns is written as a CIF and scored:

- CIF validity: the written CIF parses back with pymatgen's ``CifParser`` to the same composition;
- structural validity: every interatomic distance (periodic images included) > 0.5 Å;
- composition validity: SMACT charge neutrality with the Pauling test (alloys pass), as DiffCSP;
- uniqueness: the reduced formula is in neither the Materials Project nor the ICSD index;
- match: ``StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10).fit_anonymous`` against the family's
  references (:func:`genms_pmg.structures.family_match.family_references`);
- formation energy (eV/atom) from the energy model, and after relaxing the lowest-energy structures.

The search removes structures that fail its hard checks, so validity of the returned structures is
high by construction; the same rates over every structure the generators produced (before R_lo)
are reported too, which is the fair comparison with the paper's raw samples.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from tqdm.auto import tqdm

from genms_pmg.errors import UsageError
from genms_pmg.evaluation.csp import composition_valid
from genms_pmg.evaluation.records import append_record, read_records
from genms_pmg.knowledge.families import FAMILIES, get_family

#: The paper's GenMS column of Table 1 (E_f by its GNN, eV/atom assumed).
PAPER_GENMS = {
    "perovskite": {"cif": 1.00, "structural": 1.00, "composition": 0.85, "uniqueness": 0.90, "match": 0.93, "e_form": -0.47},
    "pyrochlore": {"cif": 1.00, "structural": 0.95, "composition": 0.89, "uniqueness": 0.49, "match": 0.86, "e_form": -1.37},
    "spinel": {"cif": 1.00, "structural": 1.00, "composition": 1.00, "uniqueness": 0.44, "match": 0.89, "e_form": -1.38},
}
PHRASINGS = (
    "a stable {name} that is not in Materials Project",
    "a new low-energy {name} compound that is not in Materials Project or ICSD",
)
#: Families with room for new compositions: simple binary families (rocksalt, rutile, fluorite,
#: wurtzite) have almost no plausible formula left outside Materials Project.
DEFAULT_FAMILIES = ("perovskite", "pyrochlore", "spinel", "double_perovskite", "elpasolite", "ruddlesden_popper",
                    "olivine", "ilmenite", "delafossite", "chalcopyrite", "half_heusler", "heusler")
METRICS = ("cif", "structural", "composition", "uniqueness", "match")


def family_name(key: str) -> str:
    """The card's plain name ('double perovskite'), as it appears in a request."""
    if key not in FAMILIES and not key.startswith("type:"):
        raise UsageError(f"unknown family {key!r}; choose from {', '.join(FAMILIES)}")
    return get_family(key).name.split("(")[0].strip()


def requests_for(key: str) -> list[str]:
    """The two phrasings of the family's request."""
    return [p.format(name=family_name(key)) for p in PHRASINGS]


def cif_round_trip(structure: Structure, path: Path) -> bool:
    """Write ``structure`` as a CIF at ``path`` (atomically) and check it parses back to the same composition."""
    from pymatgen.io.cif import CifParser, CifWriter

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    CifWriter(structure).write_file(tmp)
    os.replace(tmp, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = CifParser(path).parse_structures(primitive=False)
    except Exception:  # noqa: BLE001 - any parser failure is an invalid CIF
        return False
    return len(parsed) == 1 and parsed[0].composition.reduced_composition == structure.composition.reduced_composition


def score_structure(structure: Structure, family: str, *, known: Callable[[str], bool]) -> dict:
    """Structural, composition and match verdicts and uniqueness for one structure (no energy)."""
    from genms_pmg.structures.family_match import match_family
    from genms_pmg.structures.heuristics import shortest_distance

    formula = structure.composition.reduced_formula
    distance = shortest_distance(structure)[0]
    return {
        "formula": formula,
        "structural": bool(distance > 0.5),
        "min_distance": None if math.isinf(distance) else round(float(distance), 4),
        "composition": composition_valid(formula),
        "uniqueness": not known(formula),
        "match": match_family(structure, family),
    }


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_families_benchmark(
    families: Sequence[str],
    *,
    out: str | Path,
    samples: int = 20,
    seed: int = 0,
    formulas: int = 20,
    structures: int = 4,
    width: int = 20,
    relax_top: int = 5,
    relax_steps: int = 300,
    generators: Sequence[str] | None = None,
    progress: bool = True,
) -> dict:
    """Run every (family, phrasing) search and the relaxations; returns the summary.

    Finished searches and relaxations are appended to ``out/records.jsonl`` and reused when the
    same command runs again (resume); a folder holding records made with other settings is refused.
    """
    from genms_pmg.data.known import KnownFormulaIndex
    from genms_pmg.generator import LanguageStructureGenerator

    out = Path(out)
    (out / "cifs").mkdir(parents=True, exist_ok=True)
    for key in families:
        family_name(key)
    settings = {"samples": samples, "seed": seed, "formulas": formulas, "structures": structures, "width": width,
                "generators": list(generators) if generators else None, "relax_steps": relax_steps}
    tag = _fingerprint(settings)
    records_path = out / "records.jsonl"
    records = read_records(records_path)
    other = {r.get("settings") for r in records} - {tag}
    if other:
        raise UsageError(f"{records_path} holds results made with other settings; use another --out folder "
                         "or delete records.jsonl to start over")
    done = {(r["kind"], r["family"], r.get("request", "")): r for r in records}
    index = KnownFormulaIndex.default()

    def known(formula: str) -> bool:
        return index.is_known(formula, sources=("mp", "icsd"))

    generator = LanguageStructureGenerator(seed=seed, generators=generators, formulas=formulas, structures=structures,
                                           width=width, progress=False)
    energy_model = None
    # family by family (both searches, then the relaxation), so an interrupted run has whole families
    for key in tqdm(families, desc="families", disable=not progress):
        for phrasing, text in enumerate(requests_for(key)):
            if ("search", key, text) not in done:  # each phrasing its own seed: two draws, not one twice
                done[("search", key, text)] = _search_record(generator, key, text, samples=samples,
                                                             seed=seed + phrasing, out=out, known=known, tag=tag)
                append_record(records_path, done[("search", key, text)])
        if relax_top <= 0 or ("relax", key, "") in done:
            continue
        if energy_model is None:
            from genms_pmg import plugins

            energy_model = plugins.create("energy_models", "chgnet")
        done[("relax", key, "")] = _relax_record(key, [done[("search", key, t)] for t in requests_for(key)],
                                                 out=out, top=relax_top, steps=relax_steps, model=energy_model, tag=tag)
        append_record(records_path, done[("relax", key, "")])
    summary = summarize(list(done.values()), families)
    summary["settings"] = settings
    return summary


def _search_record(generator, key: str, text: str, *, samples: int, seed: int, out: Path,
                   known: Callable[[str], bool], tag: str) -> dict:
    """One search: scores of the returned candidates and of every structure generated (raw pi_lo)."""
    start = time.perf_counter()
    try:
        result = generator.search(text, samples, seed=seed)
    except UsageError as err:  # e.g. no formula passes: a result, not a crash
        return {"kind": "search", "family": key, "request": text, "settings": tag, "error": str(err),
                "candidates": [], "raw": [], "seconds": time.perf_counter() - start, "timings": {}}
    seconds = time.perf_counter() - start
    folder = out / "cifs" / re.sub(r"[^A-Za-z0-9_.+-]", "_", key)  # derived keys hold ':' and spaces
    folder.mkdir(parents=True, exist_ok=True)
    phrasing = requests_for(key).index(text) + 1
    candidates = []
    for cand in result.candidates:
        path = folder / f"p{phrasing}-rank{cand.rank:02d}-{cand.structure.composition.reduced_formula}.cif"
        row = score_structure(cand.structure, key, known=known)
        row.update({"cif": cif_round_trip(cand.structure, path), "file": str(path.relative_to(out)),
                    "e_form": cand.scores.get("e_form_per_atom"), "generator": cand.provenance.get("generator"),
                    "rank": cand.rank, "r_lo": cand.scores.get("r_lo"),
                    "space_group": cand.scores.get("space_group"), "num_sites": len(cand.structure)})
        candidates.append(row)
    raw = []
    structures = result.tree.get("structures", {})
    for node in result.evaluated():
        if node["kind"] != "structure" or node["node_id"] not in structures:
            continue
        structure = Structure.from_dict(structures[node["node_id"]])
        row = score_structure(structure, key, known=known)
        row.update({"generator": node["data"].get("generator"), "passed": node["passed"],
                    "e_form": node["data"].get("e_form_per_atom") if node["passed"] else None})
        raw.append(row)
    return {"kind": "search", "family": key, "request": text, "settings": tag, "seconds": seconds,
            "timings": result.timings, "candidates": candidates, "raw": raw}


def _relax_record(key: str, searches: list[dict], *, out: Path, top: int, steps: int, model, tag: str) -> dict:
    """Relax the ``top`` best returned structures of the family by the search's own ranking (R_lo,
    which includes the family-match term), both phrasings together."""
    from pymatgen.io.cif import CifParser

    from genms_pmg.energy.formation import formation_energies_per_atom
    from genms_pmg.energy.relax import relax_structure

    pool = [c for s in searches for c in s["candidates"] if c.get("e_form") is not None and math.isfinite(c["e_form"])]
    pool.sort(key=lambda c: (-(c.get("r_lo") if c.get("r_lo") is not None else -c["e_form"]), c["e_form"]))
    rows = []
    for cand in pool[:top]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = CifParser(out / cand["file"]).parse_structures(primitive=False)[0]
            start = time.perf_counter()
            relaxed, energy = relax_structure(structure, model, steps=steps)
            seconds = time.perf_counter() - start
            e_form = float(formation_energies_per_atom([relaxed], model, energies_per_atom=[energy], on_missing="nan")[0]) \
                if math.isfinite(energy) else math.nan
        path = out / cand["file"].replace(".cif", "-relaxed.cif")
        relaxed.to(filename=str(path))
        rows.append({"formula": cand["formula"], "file": cand["file"], "relaxed_file": str(path.relative_to(out)),
                     "e_form": cand["e_form"], "e_form_relaxed": e_form, "seconds": seconds,
                     "match_relaxed": _match_or_none(relaxed, key)})
    return {"kind": "relax", "family": key, "request": "", "settings": tag, "relaxed": rows}


def _match_or_none(structure: Structure, key: str) -> str | None:
    from genms_pmg.structures.family_match import match_family

    return match_family(structure, key)


def _rates(rows: list[dict]) -> dict:
    n = len(rows)
    out = {m: (sum(bool(r.get(m)) for r in rows) / n if n else None) for m in METRICS if n == 0 or m in rows[0]}
    energies = [r["e_form"] for r in rows if r.get("e_form") is not None and math.isfinite(r["e_form"])]
    out["e_form"] = float(np.mean(energies)) if energies else None
    out["n"] = n
    return out


def summarize(records: list[dict], families: Sequence[str]) -> dict:
    """Per family: rates over returned structures and over all generated ones, energies, relaxations."""
    per_family = {}
    for key in families:
        searches = [r for r in records if r["kind"] == "search" and r["family"] == key]
        cands = [c for s in searches for c in s["candidates"]]
        raw = [c for s in searches for c in s["raw"]]
        relax = next((r for r in records if r["kind"] == "relax" and r["family"] == key), None)
        entry = {"returned": _rates(cands), "generated": _rates(raw),
                 "formulas": len({c["formula"] for c in cands}),
                 "unique_formulas": len({c["formula"] for c in cands if c["uniqueness"]}),
                 "seconds": sum(s.get("seconds", 0.0) for s in searches),
                 "errors": [s["error"] for s in searches if s.get("error")],
                 "by_generator": {g: _rates([c for c in cands if c.get("generator") == g])
                                  for g in sorted({c.get("generator") for c in cands + raw} - {None})}}
        if relax and relax["relaxed"]:
            good = [r for r in relax["relaxed"] if math.isfinite(r["e_form_relaxed"])]
            entry["relaxed"] = {
                "n": len(relax["relaxed"]),
                "e_form_before": float(np.mean([r["e_form"] for r in good])) if good else None,
                "e_form_after": float(np.mean([r["e_form_relaxed"] for r in good])) if good else None,
                "match_after": sum(r["match_relaxed"] is not None for r in relax["relaxed"]) / len(relax["relaxed"]),
                "seconds_each": float(np.mean([r["seconds"] for r in relax["relaxed"]])),
            }
        per_family[key] = entry
    return {"families": per_family}
