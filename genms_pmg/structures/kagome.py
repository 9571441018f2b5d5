"""R_lo: does a structure hold a kagome net, the layer of corner-sharing triangles a kagome request asks for?

A kagome site has exactly four nearest neighbours of its sublattice in one plane, in two collinear pairs
whose lines cross at 60 degrees (two triangles sharing the site as a corner). A triangular net has three
such pairs (six neighbours) and a honeycomb none, so the count tells them apart; neighbours outside the
plane (the other layer of a Fe3Sn2 bilayer) do not matter. A breathing kagome (Mn3Sn, two triangle sizes)
passes: collinearity is judged by direction, distances within ``tolerance`` of the shortest.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Element, Structure

from genms_pmg.formulas.base import HeuristicResult
from genms_pmg.request import Request
from genms_pmg.structures.base import StructureHeuristic

__all__ = ["KagomeNet", "kagome_sublattice", "wants_kagome"]

#: Neighbours up to (1 + tolerance) times the shortest distance of the sublattice count as nearest.
NEIGHBOUR_TOLERANCE = 0.15
_COLLINEAR = -0.97   # cos of the angle between the two bonds of a collinear pair
_IN_PLANE = 0.2      # |cos| of a bond with the plane normal below which it lies in the plane


def _site_is_kagome(vectors: np.ndarray) -> bool:
    unit = vectors / np.linalg.norm(vectors, axis=1)[:, None]
    n = len(unit)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if unit[i] @ unit[j] < _COLLINEAR]
    for a in range(len(pairs)):
        for b in range(a + 1, len(pairs)):
            u, w = unit[pairs[a][0]], unit[pairs[b][0]]
            if abs(abs(u @ w) - 0.5) > 0.1:  # the two lines cross at 60 (or 120) degrees
                continue
            normal = np.cross(u, w)
            normal /= np.linalg.norm(normal)
            in_plane = int(np.sum(np.abs(unit @ normal) < _IN_PLANE))
            if in_plane == 4:
                return True
    return False


def kagome_sublattice(structure: Structure, elements: list[str] | None = None, *,
                      tolerance: float = NEIGHBOUR_TOLERANCE) -> str | None:
    """The first element (of ``elements``, default: the transition metals present, then the rest) whose
    every site is a kagome site, or None."""
    present = [el.symbol for el in structure.composition.elements]
    if elements is None:
        tm = [e for e in present if Element(e).is_transition_metal]
        elements = tm + [e for e in present if e not in tm]
    for el in elements:
        indices = [i for i, site in enumerate(structure) if site.specie.symbol == el]
        if len(indices) < 3:
            continue
        sub = Structure(structure.lattice, [el] * len(indices), [structure[i].frac_coords for i in indices])
        neighbours = sub.get_all_neighbors(6.0)
        shortest = min((n.nn_distance for ns in neighbours for n in ns), default=None)
        if shortest is None:
            continue
        ok = True
        for site, ns in zip(sub, neighbours):
            near = [n.coords - site.coords for n in ns if n.nn_distance <= shortest * (1 + tolerance)]
            if len(near) < 4 or not _site_is_kagome(np.array(near)):
                ok = False
                break
        if ok:
            return el
    return None


def wants_kagome(request: Request) -> bool:
    """Whether the request's structure type is one of the kagome names."""
    from genms_pmg.knowledge.prototypes import is_derived_key, parse_derived_key
    from genms_pmg.knowledge.structure_types import KAGOME_NAMES

    return is_derived_key(request.family) and parse_derived_key(request.family)[0] in KAGOME_NAMES


class KagomeNet(StructureHeuristic):
    """Hard for kagome requests: a cell without a kagome net of some sublattice is never returned."""

    name = "kagome_net"
    hard = False
    weight = 0.0

    def is_hard(self, request: Request) -> bool:
        return wants_kagome(request)

    def evaluate(self, request: Request, structure: Structure) -> HeuristicResult:
        if not wants_kagome(request):
            return HeuristicResult(self.name, True, 1.0, "no kagome net asked for")
        element = kagome_sublattice(structure)
        if element is None:
            return HeuristicResult(self.name, False, 0.0, "no sublattice forms a kagome net of corner-sharing triangles")
        return HeuristicResult(self.name, True, 1.0, f"{element} sublattice forms a kagome net")
