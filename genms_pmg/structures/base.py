"""Base classes of the structure level: pi_lo generators and R_lo structure heuristics.

Plugins in ``genms.structure_generators`` and ``genms.structure_heuristics`` subclass these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from pymatgen.core import Composition, Structure

from genms_pmg.formulas.base import HeuristicResult
from genms_pmg.request import Request


@dataclass
class GeneratedStructure:
    """A structure from a pi_lo generator with where it came from.

    Attributes:
        structure: the generated crystal.
        generator: name of the generator plugin.
        info: provenance, e.g. the template's id, prototype label and space group.
    """

    structure: Structure
    generator: str
    info: dict = field(default_factory=dict)


class CrystalGenerator(ABC):
    """pi_lo: generates crystal structures for one composition."""

    name: ClassVar[str] = "crystal_generator"

    @abstractmethod
    def generate(
        self,
        composition: Composition,
        *,
        n: int,
        seed: int = 0,
        family: str | None = None,
        max_atoms: int | None = None,
    ) -> list[GeneratedStructure]:
        """Return up to ``n`` distinct structures whose reduced composition is ``composition``.

        Args:
            composition: the formula to realise (any multiple of it is allowed in the cell).
            n: how many structures at most.
            seed: fixes every random choice.
            family: a family card key, so generators can prefer that family's prototypes.
            max_atoms: largest cell wanted, or None for the generator's own limit.
        """


class StructureHeuristic(ABC):
    """R_lo: checks or scores one structure (hard checks remove it, soft ones rank it)."""

    name: ClassVar[str] = "structure_heuristic"
    hard: ClassVar[bool] = True
    weight: ClassVar[float] = 1.0
    #: A tiered soft check is not traded against energy: every structure that fails it ranks
    #: behind every structure that passes it (family match: the user asked for the family).
    tiered: ClassVar[bool] = False

    def is_hard(self, request: Request) -> bool:
        """Whether a failure removes the structure for this request (default: the class's ``hard``)."""
        return bool(self.hard)

    @abstractmethod
    def evaluate(self, request: Request, structure: Structure) -> HeuristicResult:
        """Judge ``structure`` for ``request``."""
