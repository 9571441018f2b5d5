"""R_hi: checks and scores of candidate formulas against the request.

Hard heuristics (valid formula, charge neutrality, family ratio, element constraints) remove a
formula; Novelty is hard only when the user asked for novel materials and otherwise a soft
preference. :func:`rank_formulas` applies them all and orders what survives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pymatgen.core import Composition, Element

from genms_pmg.formulas import chemistry as chem
from genms_pmg.formulas.base import FormulaHeuristic, FormulaProposal, HeuristicResult
from genms_pmg.knowledge.families import ANION_CLASSES, find_family
from genms_pmg.request import Request

__all__ = ["BandGapChemistry", "ChargeNeutral", "ElementConstraints", "FamilyRatio", "Novelty", "ValidFormula", "rank_formulas"]

MAX_ELEMENTS = 10
_SOURCE_NAMES = {"mp": "Materials Project", "icsd": "ICSD"}


def _composition(formula: str) -> Composition | None:
    try:
        comp = Composition(formula)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return comp if comp.num_atoms > 0 else None


def _integral(formula: str) -> Composition | None:
    """The composition when it has only real elements in integer amounts, else None."""
    comp = _composition(formula)
    if comp is None or not all(isinstance(el, Element) for el in comp.elements):
        return None
    if any(abs(amt - round(amt)) > 1e-3 or amt < 0.5 for amt in comp.values()):
        return None
    return comp


def _reduced_formula_or_none(formula: str) -> str | None:
    comp = _composition(formula)
    return comp.reduced_formula if comp is not None and len(comp) else None


def _counts(comp: Composition) -> list[int]:
    """Element amounts of the reduced composition as integers (callers checked integrality)."""
    return [int(round(v)) for v in comp.reduced_composition.values()]


def _reduced(ratio: Sequence[int]) -> list[int]:
    g = math.gcd(*ratio)
    return sorted(int(c) // g for c in ratio)


class ValidFormula(FormulaHeuristic):
    """The formula parses into real elements with integer amounts (everything else relies on it)."""

    name = "valid_formula"
    hard = True

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        comp = _composition(proposal.formula)
        if comp is None:
            return HeuristicResult(self.name, False, 0.0, f"{proposal.formula!r} is not a chemical formula")
        if not all(isinstance(el, Element) for el in comp.elements):
            return HeuristicResult(self.name, False, 0.0, f"{proposal.formula!r} contains non-elements")
        fractional = [str(el) for el, amt in comp.items() if abs(amt - round(amt)) > 1e-3 or amt < 0.5]
        if fractional:
            return HeuristicResult(self.name, False, 0.0, f"non-integer amounts of {', '.join(fractional)}")
        if len(comp.elements) > MAX_ELEMENTS:
            return HeuristicResult(self.name, False, 0.0, f"{len(comp.elements)} elements (max {MAX_ELEMENTS})")
        return HeuristicResult(self.name, True, 1.0, f"{comp.reduced_formula}: {len(comp.elements)} elements")


class ChargeNeutral(FormulaHeuristic):
    """SMACT validity: some ICSD24 oxidation states balance and pass the Pauling test.

    Intermetallic families and metallic requests accept all-metal formulas (SMACT alloys).
    """

    name = "charge_neutral"
    hard = True

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        comp = _integral(proposal.formula)
        if comp is None:
            return HeuristicResult(self.name, False, 0.0, "not a formula of real elements in integer amounts")
        card = find_family(request.family)
        alloys = bool(request.metallic) or bool(card and card.intermetallic)
        if chem.is_charge_neutral(comp.reduced_formula, alloys=alloys):
            how = "charge-balanced or all-metal alloy" if alloys else "charge-balanced with ICSD24 oxidation states"
            return HeuristicResult(self.name, True, 1.0, f"{comp.reduced_formula}: {how}")
        return HeuristicResult(self.name, False, 0.0,
                               f"{comp.reduced_formula}: no charge-neutral ICSD24 oxidation states"
                               + ("" if alloys else " (alloys not accepted for this request)"))


class FamilyRatio(FormulaHeuristic):
    """Element counts match the requested atom ratio, else the family's template ratio."""

    name = "family_ratio"
    hard = True

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        if request.atom_ratio:
            target, what = list(request.atom_ratio), "requested ratio"
        elif find_family(request.family) is not None:
            target, what = find_family(request.family).ratio, f"{request.family} ratio"
        else:
            return HeuristicResult(self.name, True, 1.0, "no family or ratio to match")
        comp = _integral(proposal.formula)
        if comp is None:
            return HeuristicResult(self.name, False, 0.0, "not a formula of real elements in integer amounts")
        counts = _reduced(_counts(comp))
        want = _reduced(target)
        ok = counts == want
        mixed = [el for el in request.required_elements if el in _ANION_ELEMENTS and el in comp]
        if not ok and len(mixed) == 2:  # an oxynitride shares one anion site between O and N
            amounts = comp.reduced_composition.get_el_amt_dict()
            merged = [int(round(v)) for el, v in amounts.items() if el not in mixed]
            merged.append(int(round(sum(amounts[el] for el in mixed))))
            ok = _reduced(merged) == want
            counts = _reduced(merged) if ok else counts
        sign = "matches" if ok else "does not match"
        return HeuristicResult(self.name, ok, float(ok),
                               f"counts {':'.join(map(str, counts))} {sign} {what} {':'.join(map(str, want))}")


_ANION_ELEMENTS = frozenset(el for els, _ in ANION_CLASSES.values() for el in els)


class ElementConstraints(FormulaHeuristic):
    """Required elements present, excluded absent, an asked-for anion class present, size within max_atoms."""

    name = "element_constraints"
    hard = True

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        comp = _integral(proposal.formula)
        if comp is None:
            return HeuristicResult(self.name, False, 0.0, "not a formula of real elements in integer amounts")
        present = {str(el) for el in comp.elements}
        problems = []
        missing = [e for e in request.required_elements if e not in present]
        if missing:
            problems.append(f"missing required {', '.join(missing)}")
        for group in request.required_any:
            if not set(group) & present:
                problems.append(f"none of {' or '.join(group)}")
        banned = [e for e in request.forbidden_elements() if e in present]
        if banned:
            problems.append(f"contains excluded {', '.join(banned)}")
        if request.anion_classes:
            anions = {el for cls in request.anion_classes for el in ANION_CLASSES.get(cls, ((), 0))[0]}
            if not anions & present:
                problems.append(f"no {'/'.join(request.anion_classes)} anion ({', '.join(sorted(anions))})")
        size = int(round(comp.reduced_composition.num_atoms))
        if request.max_atoms is not None and size > request.max_atoms:
            problems.append(f"{size} atoms per formula unit > max_atoms {request.max_atoms}")
        if problems:
            return HeuristicResult(self.name, False, 0.0, "; ".join(problems))
        return HeuristicResult(self.name, True, 1.0, "required, excluded, anion and size constraints met")


class Novelty(FormulaHeuristic):
    """Is the formula absent from the known-formula sources?

    ``hard`` is True so that callers which only read the class attribute still prune known
    formulas for novel requests; for other requests it always passes and scores 1, known or not
    (a chemist lists the known members first; the reason still says where a formula is known).
    :meth:`is_hard` says which role it plays for a request. A formula in the Materials Project
    list counts as known whatever index the request names (``data.known.novelty_sources``).

    Args:
        known_index: object with ``is_known`` and ``sources_of``; defaults to
            ``KnownFormulaIndex.default()`` on first use.
    """

    name = "novelty"
    hard = True
    weight = 0.5
    KNOWN_SCORE = 0.3

    def __init__(self, *, known_index: Any = None) -> None:
        self._index = known_index

    def is_hard(self, request: Request) -> bool:
        """Hard only when the user asked for novel materials or listed formulae to avoid."""
        return bool(request.novel or request.avoid_formulas)

    def _known_index(self) -> Any:
        if self._index is None:
            from genms_pmg.data.known import KnownFormulaIndex

            self._index = KnownFormulaIndex.default()
        return self._index

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        avoided = _reduced_formula_or_none(proposal.formula)
        if avoided is not None and avoided in {_reduced_formula_or_none(f) for f in request.avoid_formulas}:
            return HeuristicResult(self.name, False, 0.0, f"{avoided} is on the request's list of formulae to avoid")
        from genms_pmg.data.known import novelty_sources

        sources = novelty_sources(request)
        # Without the index every formula would look novel: a DataUnavailableError stops the search.
        found = self._known_index().sources_of(proposal.formula)
        found = {s: ids for s, ids in found.items() if s in sources and ids}
        names = " and ".join(_SOURCE_NAMES.get(s, s) for s in sources)
        if not found:
            return HeuristicResult(self.name, True, 1.0, f"not in {names}")
        where = " and ".join(
            f"{_SOURCE_NAMES.get(s, s)} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
            for s, ids in found.items())
        # a request that does not ask for new materials is served known members first: no penalty
        return HeuristicResult(self.name, not request.novel, self.KNOWN_SCORE if request.novel else 1.0,
                               f"known in {where}")


#: Pauling electronegativity difference windows (anion minus cation mean) per band-gap word.
#: A chemistry proxy, not a band-gap model: ionic oxides and fluorides are wide-gap, sulfides and
#: nitrides of late metals are semiconductors, all-metal formulas are metals.
BAND_GAP_WINDOWS = {"metal": (0.0, 0.4), "semiconductor": (0.4, 1.6), "insulator": (1.4, 3.5), "wide_gap": (1.7, 3.5)}


class BandGapChemistry(FormulaHeuristic):
    """Soft: does the formula's ionicity fit the band-gap word (metal, semiconductor, insulator, wide-gap)?

    Scores 1 inside the word's electronegativity-difference window and falls off outside it; passes
    and scores 1 when the request names no band-gap class.
    """

    name = "band_gap_chemistry"
    hard = False
    weight = 0.5

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        if request.band_gap is None:
            return HeuristicResult(self.name, True, 1.0, "no band-gap class requested")
        comp = _composition(proposal.formula)
        if comp is None:
            return HeuristicResult(self.name, True, 0.0, "not a formula")
        chis = {str(el): el.X for el in comp.elements if isinstance(el, Element) and not math.isnan(el.X)}
        if len(chis) < 2:
            return HeuristicResult(self.name, True, 0.5, "electronegativities unknown")
        anion = max(chis, key=chis.get)
        others = [comp[el] * chis[el] for el in chis if el != anion]
        weight = sum(comp[el] for el in chis if el != anion)
        delta = chis[anion] - sum(others) / weight
        lo, hi = BAND_GAP_WINDOWS[request.band_gap]
        score = chem.window(delta, lo, hi, 0.4)
        return HeuristicResult(self.name, True, score, f"electronegativity difference {delta:.2f} "
                               f"({'in' if lo <= delta <= hi else 'outside'} {lo}-{hi} for {request.band_gap.replace('_', '-')})")


def evaluate_formula(
    request: Request, proposal: FormulaProposal, heuristics: Sequence[FormulaHeuristic]
) -> tuple[list[HeuristicResult], bool, float]:
    """R_hi of one proposal: every verdict, whether all hard checks pass, and the ranking value.

    value = log(max(prior, 1e-9)) + sum over soft heuristics of weight * log(max(score, 1e-6)).
    """
    results = [h.evaluate(request, proposal) for h in heuristics]
    value = math.log(max(proposal.prior, 1e-9))
    passed = True
    for h, r in zip(heuristics, results):
        if h.is_hard(request):
            passed = passed and r.passed
        else:
            value += h.weight * math.log(max(r.score, 1e-6))
    return results, passed, value


def rank_formulas(
    request: Request, proposals: Sequence[FormulaProposal], heuristics: Sequence[FormulaHeuristic]
) -> list[tuple[FormulaProposal, list[HeuristicResult], float]]:
    """Drop proposals that fail a hard heuristic and order the rest by R_hi, best first.

    Ties go to the alphabetically first formula.
    """
    ranked = []
    for proposal in proposals:
        results, passed, value = evaluate_formula(request, proposal, heuristics)
        if passed:
            ranked.append((proposal, results, value))
    ranked.sort(key=lambda item: (-item[2], item[0].formula))
    return ranked
