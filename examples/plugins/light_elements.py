"""A third-party formula heuristic (R_hi): prefer light elements, for gravimetric energy density.

A plugin is a class with a ``name`` and ``evaluate(request, proposal) -> HeuristicResult``,
registered under the ``genms.formula_heuristics`` entry-point group. Soft (``hard = False``): it
adds ``weight * log(score)`` to a formula's R_hi value, so lighter formulae move up.
"""

from __future__ import annotations

from pymatgen.core import Composition

from genms_pmg.formulas.base import FormulaHeuristic, FormulaProposal, HeuristicResult
from genms_pmg.request import Request

#: Mean atomic mass (u) at which the score halves.
HALF_SCORE_MASS = 40.0


class LightElements(FormulaHeuristic):
    """Score 1 / (1 + m/40) by the formula's mean atomic mass m."""

    name = "light_elements"
    hard = False
    weight = 2.0

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        comp = Composition(proposal.formula)
        mass = comp.weight / comp.num_atoms
        return HeuristicResult(self.name, True, 1.0 / (1.0 + mass / HALF_SCORE_MASS), f"mean atomic mass {mass:.1f} u")
