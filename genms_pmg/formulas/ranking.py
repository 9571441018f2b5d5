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
    n: int, seed: int = 0, forget: Sequence[str] | None = None,
) -> list[RankedFormula]:
    """Propose up to ``n`` formulae, judge each with every heuristic, passing ones first by value.

    ``forget``: formulas treated as unknown meanwhile (``data.forget``)."""
    from genms_pmg.data.forget import forgetting

    with forgetting(forget):
        return _propose_ranked(request, proposers=proposers, heuristics=heuristics, n=n, seed=seed)


def _propose_ranked(request: Request, *, proposers, heuristics, n: int, seed: int) -> list[RankedFormula]:
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


def shortfall(request: Request, ranked: Sequence[RankedFormula], n: int) -> str | None:
    """One line saying why fewer than ``n`` formulae passed, or None when ``n`` did.

    Names what cut the candidates: the hard checks that rejected proposals (with counts), and, when
    the proposer itself ran dry, the request's constraints that bound the space it searched.
    """
    passed = sum(1 for r in ranked if r.passed)
    if passed >= n:
        return None
    from collections import Counter

    cuts = Counter(c["name"] for r in ranked if not r.passed for c in r.checks if not c.get("passed", True))
    parts = []
    if len(ranked) < n:
        parts.append(f"the proposer found only {len(ranked)} plausible formula(e) for {_constraints(request)}")
    if cuts:
        parts.append("hard checks rejected " + ", ".join(f"{k} {v}" for k, v in cuts.most_common()))
    return f"only {passed} of the {n} formulae asked for passed every hard check: " + "; ".join(parts)


def _constraints(request: Request) -> str:
    """The request's binding constraints in a few words ("a fluorite (AX2) with Ce, oxide anions")."""
    from genms_pmg.knowledge.families import find_family

    bits = []
    card = find_family(request.family)
    bits.append(f"a {card.name.split('(')[0].strip()} ({card.template})" if card else "this request")
    if request.required_elements:
        bits.append("with " + ", ".join(request.required_elements))
    for group in request.required_any:
        bits.append("with one of " + "/".join(group[:6]) + ("..." if len(group) > 6 else ""))
    sites = getattr(request, "site_elements", None) or {}
    for role, els in sites.items():
        bits.append(f"{'/'.join(els[:4])} on site {role}")
    if request.anion_classes:
        bits.append("/".join(request.anion_classes) + " anions")
    excluded = request.forbidden_elements()
    if excluded:
        bits.append(f"{len(excluded)} element(s) excluded")
    if request.max_atoms:
        bits.append(f"at most {request.max_atoms} atoms")
    if request.novel:
        bits.append("absent from the known-formula indexes")
    bits.append("charge balance")
    return ", ".join(bits)


__all__ = ["RankedFormula", "propose_ranked", "shortfall"]
