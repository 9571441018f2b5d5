"""pi_hi then R_hi without structures: what ``genms propose`` shows and the search starts from.

Why a module of its own: users tune requests on the formula level first (seconds) before paying
for structure generation and energies (minutes), so the ranked formulae, their scores and the
reasons behind them must be available on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from genms_pmg.formulas.base import (
    FormulaHeuristic,
    FormulaProposal,
    FormulaProposer,
    _DataclassMSONable,
)
from genms_pmg.formulas.heuristics import evaluate_formula
from genms_pmg.request import Request


@dataclass
class RankedFormula(_DataclassMSONable):
    """One proposed formula with its R_hi verdict.

    Attributes:
        formula: reduced formula.
        passed: every hard check passed.
        value: the R_hi ranking value (log prior plus weighted log scores of the soft checks).
        proposal: what the proposer said (prior, family, oxidation states, reasons).
        checks: every heuristic's verdict, as dicts.
    """

    formula: str
    passed: bool
    value: float
    proposal: dict = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """The proposer's reasons then each check's one-line verdict."""
        return [*self.proposal.get("reasons", []),
                *(f"{c['name']}: {c['reason']}" for c in self.checks if c.get("reason"))]


def propose_ranked(
    request: Request, *, proposers: Sequence[FormulaProposer], heuristics: Sequence[FormulaHeuristic],
    n: int, seed: int = 0,
) -> list[RankedFormula]:
    """Propose up to ``n`` formulae, judge each with every heuristic, passing ones first by value."""
    from genms_pmg.search import collect_proposals

    def passes(p: FormulaProposal) -> bool:
        return all(h.evaluate(request, p).passed for h in heuristics if h.is_hard(request))

    proposals = collect_proposals(proposers, request, n=n, seed=seed, passes=passes, enough=n)
    ranked = []
    for proposal in proposals:
        results, passed, value = evaluate_formula(request, proposal, heuristics)
        ranked.append(RankedFormula(proposal.formula, passed, value, proposal.as_dict(),
                                    [r.as_dict() for r in results]))
    ranked.sort(key=lambda r: (not r.passed, -r.value, r.formula))
    return ranked


__all__ = ["RankedFormula", "propose_ranked"]
