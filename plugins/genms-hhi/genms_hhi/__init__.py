"""Supply-risk heuristic from SMACT's element HHI data: an example third-party GenMS plugin."""

from __future__ import annotations

from pymatgen.core import Composition
from smact.data_loader import lookup_element_hhis

from genms_pmg.formulas.base import FormulaHeuristic, FormulaProposal, HeuristicResult
from genms_pmg.request import Request

HHI_MAX = 10000.0


def production_hhi(formula: str) -> float:
    """Mole-fraction-weighted HHI of production (0 to 10000) of the elements in ``formula``."""
    fractions = Composition(formula).fractional_composition
    total = 0.0
    for element, fraction in fractions.items():
        hhi_production, _ = lookup_element_hhis(element.symbol)
        total += fraction * (hhi_production if hhi_production is not None else HHI_MAX)
    return total


class HHISupplyRisk(FormulaHeuristic):
    """Soft: score 1 - HHI/10000, so formulae from widely produced elements rank higher."""

    name = "hhi_supply_risk"
    hard = False
    weight = 0.5

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        hhi = production_hhi(proposal.formula)
        return HeuristicResult(self.name, True, max(0.0, 1.0 - hhi / HHI_MAX), f"production HHI {hhi:.0f}")
