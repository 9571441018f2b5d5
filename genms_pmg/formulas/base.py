"""Base classes of the formula level: pi_hi proposers and R_hi heuristics.

Plugins in the ``genms.proposers`` and ``genms.formula_heuristics`` entry-point groups subclass
these; the registry checks that they do.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from monty.json import MSONable
from pymatgen.core import Composition

from genms_pmg.request import Request


def display_formula(formula: str) -> str:
    """Reduced formula written plainly in electronegativity order: ``MgFe2O4``, not ``Mg(FeO2)2``."""
    return re.sub(r"(?<=[A-Za-z])1(?![0-9])", "", Composition(formula).reduced_composition.formula.replace(" ", ""))


class _DataclassMSONable(MSONable):
    """MSONable for flat dataclasses: ``as_dict`` is ``asdict`` plus the class tag."""

    def as_dict(self) -> dict:
        d = asdict(self)  # type: ignore[call-overload]
        d["@module"] = type(self).__module__
        d["@class"] = type(self).__name__
        return d

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**{k: v for k, v in d.items() if not k.startswith("@")})


@dataclass
class FormulaProposal(_DataclassMSONable):
    """A candidate chemical formula from a proposer.

    Attributes:
        formula: reduced formula, e.g. ``"MgAl2O4"``.
        family: family card key the formula was built for, if any.
        oxidation_states: element -> oxidation state assumed by the proposer (empty if none).
        prior: the proposer's own likelihood score in [0, 1]; higher is more plausible.
        proposer: name of the proposer plugin.
        reasons: short human-readable reasons behind the proposal.
    """

    formula: str
    family: str | None = None
    oxidation_states: dict[str, float] = field(default_factory=dict)
    prior: float = 0.5
    proposer: str = ""
    reasons: list[str] = field(default_factory=list)


@dataclass
class HeuristicResult(_DataclassMSONable):
    """The verdict of one heuristic on one formula or structure.

    Attributes:
        name: heuristic name.
        passed: False removes the candidate when the heuristic is hard.
        score: in [0, 1]; higher is better. Soft heuristics contribute it to the ranking.
        reason: one line that explains the verdict.
    """

    name: str
    passed: bool
    score: float
    reason: str = ""


class FormulaProposer(ABC):
    """pi_hi: turns a :class:`Request` into candidate formulae."""

    name: ClassVar[str] = "proposer"

    @abstractmethod
    def propose(
        self, request: Request, *, n: int, seed: int = 0, exclude: Collection[str] = ()
    ) -> list[FormulaProposal]:
        """Return up to ``n`` proposals, most plausible first, none of them in ``exclude``.

        The same ``seed`` must give the same proposals.
        """


class FormulaHeuristic(ABC):
    """R_hi: checks or scores one formula against the request.

    ``hard`` heuristics remove a formula that fails; soft ones only contribute ``weight * score``.
    ``opt_in`` ones (network calls, cost) are left out of the default set and run only when named.
    """

    name: ClassVar[str] = "formula_heuristic"
    hard: ClassVar[bool] = True
    weight: ClassVar[float] = 1.0
    opt_in: ClassVar[bool] = False

    def is_hard(self, request: Request) -> bool:
        """Whether a failure removes the formula for this request (default: the class's ``hard``)."""
        return bool(self.hard)

    @abstractmethod
    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        """Judge ``proposal`` for ``request``."""
