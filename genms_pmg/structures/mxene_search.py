"""The search for an MXene request: parent MAX phases of the data, their sheets, relaxed and ranked.

A sheet is not a bulk crystal, so the formula-level search (charge balance, hull of bulk phases) does not
apply: the formulae are those of the MAX phases in the bundled data whose M and X the request allows, one
sheet per M(n+1)X(n) (its most stable parent), with the termination asked for (bare when none is said).
Each sheet is relaxed with its normal fixed and ranked by its energy against the parent MAX phase minus
the A element (``structures.mxene``). The tree has the same shape as the main search's, so results,
CIFs and the table come out the same way.
"""

from __future__ import annotations

import time
from typing import Any

from pymatgen.core import Composition
from tqdm import tqdm

from genms_pmg.errors import UsageError
from genms_pmg.request import Request
from genms_pmg.search import SearchNode, SearchTree
from genms_pmg.structures.mxene import (
    MXENE_VACUUM,
    max_parents,
    relax_sheet,
    sheet_energy_vs_parent,
    sheet_from_max,
    vacuum_width,
)

_X_OF = {"carbide": "C", "nitride": "N"}


def mxene_search(request: Request, model: Any, *, n: int, limit: int, relax_steps: int,
                 timings: dict[str, float], progress: bool = True) -> tuple[SearchTree, list[str]]:
    """(tree, structure node ids best first) for an MXene request."""
    from genms_pmg.data.oqmd import ReferenceStructureDB

    t0 = time.perf_counter()
    x_elements = {_X_OF[c] for c in request.anion_classes if c in _X_OF} | {
        e for e in request.required_elements if e in ("C", "N")}
    others = [a for a in request.anion_classes if a not in _X_OF]
    if others:
        raise UsageError(f"an MXene is a carbide or nitride sheet, not an {others[0]}; drop '{others[0]}'")
    m_elements = {e for e in request.required_elements if e not in ("C", "N")}
    for group in request.required_any:
        m_elements |= set(group)
    forbidden = set(request.forbidden_elements())
    parents = [p for p in max_parents(m_elements, x_elements) if not set(Composition(p[0]).as_dict()) & forbidden]
    termination = None if request.termination in (None, "bare") else request.termination
    if termination and termination in forbidden:
        raise UsageError(f"the termination {termination} is excluded by the request; drop one of the two")
    sheets: dict[str, tuple] = {}
    # Al-MAX phases first (the ones HF or fluoride etching turns into MXenes), then the most stable parent
    parents.sort(key=lambda p: p[3] != "Al")
    for formula, row_id, name, a in parents:
        comp = Composition(formula)
        sheet = Composition({el: amt for el, amt in comp.items() if el.symbol != a}).reduced_formula
        sheets.setdefault(sheet, (formula, row_id, name, a))
    if not sheets:
        allowed = ", ".join(sorted(m_elements | x_elements)) or "any M and X"
        raise UsageError(f"no MAX phase of the bundled data has {allowed} to cut an MXene from; try Ti, V, Nb, Mo "
                         "or Cr with carbide or nitride")
    chosen = sorted(sheets.items(), key=lambda kv: (Composition(kv[0]).num_atoms, kv[0]))[:limit]
    db = ReferenceStructureDB.default()
    refs = model.elemental_references()
    tree = SearchTree()
    tree.add(SearchNode("root", None, "request", request.text))
    results: list[tuple[float, str]] = []
    timings["propose"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    for i, (sheet_formula, (parent_formula, row_id, name, a)) in enumerate(
            tqdm(chosen, desc="MXene sheets", unit="sheet", disable=not progress)):
        fid = f"f{i}"
        label = sheet_formula if termination is None else f"{sheet_formula}{termination}2"
        tree.add(SearchNode(fid, "root", "formula", label, value=0.0, data={
            "proposal": {"proposer": "mxene", "reasons": [f"sheet of the MAX phase {parent_formula} "
                                                            f"(OQMD-ICSD {name}) with {a} removed"]},
            "expanded": True}))
        parent = db.structure(row_id)
        sheet = sheet_from_max(parent, a, termination=termination)
        relaxed, energy, steps = relax_sheet(sheet, model, steps=relax_steps)
        parent_energy = model.get_energy(parent)
        delta = sheet_energy_vs_parent(relaxed, energy, parent, parent_energy, a, refs)
        vac = vacuum_width(relaxed)
        sid = f"{fid}-s0"
        tree.nodes[fid].label = relaxed.composition.reduced_formula
        tree.add(SearchNode(sid, fid, "structure", relaxed.composition.reduced_formula, value=-delta, data={
            "generator": "mxene", "generator_info": {"source": name, "parent": parent_formula, "removed": a,
                                                     "termination": termination or "bare"},
            "energy_per_atom": energy / len(relaxed), "relaxed": True,
            "relaxation": {"steps": steps, "normal_fixed": True},
            "sheet_scores": {"sheet_energy_vs_parent": round(delta, 4), "parent_max_phase": parent_formula,
                             "removed_element": a, "termination": termination or "bare",
                             "vacuum_angstrom": round(vac, 2),
                             "energy_note": "eV/atom of the sheet against its parent MAX phase minus the A element "
                                            "(terminations at their model references); no bulk hull for a sheet"},
        }), relaxed)
        if vac < MXENE_VACUUM - 1.0:
            tree.nodes[sid].passed = False
            tree.nodes[sid].checks.append({"name": "vacuum", "passed": False, "score": 0.0,
                                           "reason": f"vacuum {vac:.1f} A after relaxation"})
            continue
        results.append((delta, sid))
    timings["relax"] = time.perf_counter() - t1
    ranked = [sid for _, sid in sorted(results)][:n]
    if not ranked:
        raise UsageError(f"no MXene sheet kept its vacuum for {request.text!r}")
    return tree, ranked


__all__ = ["mxene_search"]
