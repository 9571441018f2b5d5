"""R_lo structure heuristics: cheap checks that remove unphysical candidates before energies.

Why: generators (templates, diffusion) sometimes put atoms on top of each other or keep a
composition no oxidation-state assignment can balance; CHGNet energies of such cells are
meaningless, so they are removed first. :func:`energy_is_sane` is the matching check applied
after the energy model, as the GenMS paper discards candidates with energies outside a sane range.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pymatgen.core import Structure

from genms_pmg.formulas.base import HeuristicResult
from genms_pmg.request import Request
from genms_pmg.structures.base import StructureHeuristic


def _covalent_radius(z: int) -> float:
    """Cordero covalent radius in Å (via ASE's table)."""
    from ase.data import covalent_radii

    return float(covalent_radii[z])


def shortest_distance(structure: Structure, *, cutoff: float = 5.0) -> tuple[float, float, str]:
    """Shortest interatomic distance including periodic images (self-images too).

    Returns ``(distance, ratio, pair)``: the distance in Å, the smallest ratio of any pair's
    distance to the sum of its covalent radii, and the pair with the shortest distance ("Mg-O").
    When no two atoms are within ``cutoff`` Å, returns ``(inf, inf, "")``.
    """
    centers, neighbors, images, distances = structure.get_neighbor_list(cutoff, exclude_self=False)
    # drop each atom paired with itself in the home cell; keep coincident distinct atoms
    keep = ~((centers == neighbors) & np.all(images == 0, axis=1))
    centers, neighbors, distances = centers[keep], neighbors[keep], distances[keep]
    if len(distances) == 0:
        return math.inf, math.inf, ""
    numbers = np.array([site.specie.Z for site in structure])
    radii = np.array([_covalent_radius(z) for z in range(int(numbers.max()) + 1)])
    ratios = distances / (radii[numbers[centers]] + radii[numbers[neighbors]])
    k = int(np.argmin(distances))
    pair = f"{structure[int(centers[k])].specie.symbol}-{structure[int(neighbors[k])].specie.symbol}"
    return float(distances[k]), float(ratios.min()), pair


class MinimumDistance(StructureHeuristic):
    """Hard: no two atoms (periodic images included) closer than ``threshold`` Å.

    The score is the smallest distance / (sum of covalent radii) over all pairs, capped at 1, so
    squeezed but legal cells rank below relaxed-looking ones.
    """

    name: ClassVar[str] = "min_distance"
    hard: ClassVar[bool] = True
    weight: ClassVar[float] = 1.0

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def evaluate(self, request: Request, structure: Structure) -> HeuristicResult:
        """Pass when the shortest distance exceeds the threshold."""
        distance, ratio, pair = shortest_distance(structure)
        if math.isinf(distance):
            return HeuristicResult(self.name, True, 1.0, "no two atoms within 5 Å of each other")
        passed = distance > self.threshold
        score = float(min(1.0, max(0.0, ratio)))
        reason = (
            f"shortest interatomic distance {distance:.2f} Å ({pair}), "
            f"{ratio:.2f}x the sum of covalent radii"
        )
        if not passed:
            reason += f"; below the {self.threshold:.2f} Å limit"
        return HeuristicResult(self.name, passed, score if passed else 0.0, reason)


class SmactValid(StructureHeuristic):
    """Hard: the structure's composition passes SMACT charge-neutrality + electronegativity rules.

    Alloys (all-metal compositions) pass, and mixed valence (Fe3O4) is tried when the single-
    valence test fails, so common intermetallics and spinels are not thrown away.
    """

    name: ClassVar[str] = "smact_valid"
    hard: ClassVar[bool] = True
    weight: ClassVar[float] = 1.0

    def evaluate(self, request: Request, structure: Structure) -> HeuristicResult:
        """Check the reduced composition with ``smact.screening.smact_validity``."""
        from smact.screening import smact_validity

        comp = structure.composition.reduced_composition
        formula = comp.reduced_formula
        try:
            if smact_validity(comp, use_pauling_test=True, include_alloys=True):
                return HeuristicResult(self.name, True, 1.0, f"{formula} is SMACT-valid")
            if smact_validity(comp, use_pauling_test=True, include_alloys=True, mixed_valence=True):
                return HeuristicResult(self.name, True, 1.0, f"{formula} is SMACT-valid with mixed valence")
        except Exception as exc:  # noqa: BLE001 - e.g. an element SMACT has no data for
            return HeuristicResult(self.name, False, 0.0, f"SMACT cannot check {formula}: {exc}")
        return HeuristicResult(
            self.name, False, 0.0, f"{formula} has no charge-neutral, electronegativity-ordered oxidation states"
        )


#: Bounds of :func:`energy_is_sane` (eV/atom).
MAX_ABS_FORMATION_ENERGY = 5.0
ENERGY_PER_ATOM_RANGE = (-15.0, 5.0)


def energy_is_sane(e_per_atom: float, e_form_per_atom: float | None) -> bool:
    """False for NaN/inf, ``|E_form| > 5`` eV/atom, or ``E/atom`` outside [-15, 5] eV/atom.

    Such values come from cells the model extrapolates on (overlapping atoms, exploded cells),
    not from real compounds. ``e_form_per_atom=None`` checks the total energy only.
    """
    try:
        e = float(e_per_atom)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(e) or not ENERGY_PER_ATOM_RANGE[0] <= e <= ENERGY_PER_ATOM_RANGE[1]:
        return False
    if e_form_per_atom is None:
        return True
    try:
        ef = float(e_form_per_atom)
    except (TypeError, ValueError):
        return False
    return math.isfinite(ef) and abs(ef) <= MAX_ABS_FORMATION_ENERGY


class RequestedSymmetry(StructureHeuristic):
    """The structure's space group or crystal system is the one the request names.

    Hard only when the request names a space group or crystal system; otherwise it passes and
    scores 1. spglib's symprec of 0.1 Å forgives the small distortions of unrelaxed samples.
    """

    name: ClassVar[str] = "symmetry"
    hard: ClassVar[bool] = False
    weight: ClassVar[float] = 1.0

    def __init__(self, *, symprec: float = 0.1) -> None:
        self.symprec = symprec

    def is_hard(self, request: Request) -> bool:
        return request.space_group is not None or request.crystal_system is not None

    def evaluate(self, request: Request, structure: Structure) -> HeuristicResult:
        if not self.is_hard(request):
            return HeuristicResult(self.name, True, 1.0, "no symmetry requested")
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        try:
            analyzer = SpacegroupAnalyzer(structure, symprec=self.symprec)
            number, symbol, system = analyzer.get_space_group_number(), analyzer.get_space_group_symbol(), \
                analyzer.get_crystal_system()
        except Exception as exc:  # noqa: BLE001 - spglib fails on degenerate cells
            return HeuristicResult(self.name, False, 0.0, f"spglib found no space group: {exc}")
        found = f"{symbol} (No. {number}, {system})"
        if request.space_group is not None and number != request.space_group:
            return HeuristicResult(self.name, False, 0.0, f"space group {found}, not No. {request.space_group}")
        if request.crystal_system is not None and system != request.crystal_system:
            return HeuristicResult(self.name, False, 0.0, f"{found} is not {request.crystal_system}")
        return HeuristicResult(self.name, True, 1.0, f"space group {found} as requested")
