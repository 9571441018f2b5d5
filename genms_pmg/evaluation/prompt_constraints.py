"""Check proposed formulae against a prompt's stated constraints, independently of R_hi.

Why independent: the issue-4 targets (share of formulae meeting every hard constraint, share of
novel ones) must measure the proposer and parser together against what a person wrote down for
each prompt, not against what the parser understood. The specs live in
``tests/data/formula_prompts.json``; see its ``_doc`` for the fields.
"""

from __future__ import annotations

import warnings
from functools import reduce
from itertools import product
from math import gcd

from pymatgen.core import Composition


def _reduced_counts(values: list[int]) -> list[int]:
    div = reduce(gcd, values)
    return sorted(v // div for v in values)


def ratio_fits(counts: list[int], site_counts: list[int]) -> bool:
    """Whether merging family sites (several sites, one element) gives the formula's counts."""
    k = len(counts)
    target = _reduced_counts(counts)
    for labels in product(range(k), repeat=len(site_counts)):
        if len(set(labels)) == k:
            sums = [0] * k
            for count, label in zip(site_counts, labels):
                sums[label] += count
            if _reduced_counts(sums) == target:
                return True
    return False


def charge_neutral(formula: str, *, alloys: bool) -> bool:
    """SMACT charge neutrality with the Pauling test; mixed valence tried; alloys optional."""
    from smact.screening import smact_validity

    comp = Composition(formula)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(smact_validity(comp, use_pauling_test=True, include_alloys=alloys)
                        or smact_validity(comp, use_pauling_test=True, include_alloys=alloys, mixed_valence=True))
        except Exception:  # noqa: BLE001 - elements SMACT has no data for
            return False


def violations(formula: str, spec: dict) -> list[str]:
    """Every hard constraint of ``spec`` that ``formula`` breaks (empty: all met)."""
    from genms_pmg.knowledge.elements import SCARCE, TOXIC

    try:
        comp = Composition(formula)
    except (ValueError, KeyError, TypeError, AttributeError):
        return ["not a formula"]
    present = {str(el) for el in comp.elements}
    out = []
    missing = [e for e in spec.get("required", []) if e not in present]
    if missing:
        out.append(f"missing {','.join(missing)}")
    for group in spec.get("required_any", []):
        if not present & set(group):
            out.append(f"none of {','.join(group)}")
    excluded = set(spec.get("excluded", []))
    for name in spec.get("excluded_sets", []):
        excluded |= set({"toxic": TOXIC, "scarce": SCARCE}[name]) - set(spec.get("required", []))
    banned = sorted(present & excluded)
    if banned:
        out.append(f"contains excluded {','.join(banned)}")
    if spec.get("anions") and not present & set(spec["anions"]):
        out.append(f"no anion from {','.join(spec['anions'])}")
    counts = [int(round(v)) for v in comp.reduced_composition.values()]
    if spec.get("ratio") and not ratio_fits(counts, spec["ratio"]):
        out.append(f"counts {counts} do not fit ratio {spec['ratio']}")
    if spec.get("max_atoms") and sum(counts) > spec["max_atoms"]:
        out.append(f"{sum(counts)} atoms > {spec['max_atoms']}")
    if comp.reduced_formula in {Composition(f).reduced_formula for f in spec.get("avoid", [])}:
        out.append("on the avoid list")
    if not charge_neutral(formula, alloys=bool(spec.get("alloys"))):
        out.append("not charge neutral (SMACT)")
    return out
