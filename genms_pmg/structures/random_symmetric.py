"""pi_lo baseline: random symmetric crystals from pyxtal (the CSP benchmark's "random" generator).

Random structure search is the classic null model of crystal structure prediction: a space group
compatible with the cell's atom counts is drawn at random and Wyckoff positions are filled at random
(pyxtal, Fredericks et al. 2021). A learnt generator is only useful if it beats this by a wide margin.
pyxtal is an optional dependency (``pip install pyxtal`` or the ``test`` extra).
"""

from __future__ import annotations

import functools
import warnings
from typing import ClassVar

import numpy as np
from pymatgen.core import Composition

from genms_pmg.errors import DataUnavailableError
from genms_pmg.structures.base import CrystalGenerator, GeneratedStructure

__all__ = ["RandomSymmetricGenerator"]


def _pyxtal():
    try:
        import pyxtal
    except ImportError:
        raise DataUnavailableError(
            "the random baseline needs pyxtal: pip install pyxtal (or pip install 'genms[test]')"
        ) from None
    return pyxtal


@functools.lru_cache(maxsize=4096)
def compatible_space_groups(counts: tuple[int, ...]) -> tuple[int, ...]:
    """Space groups whose Wyckoff multiplicities can hold these per-species counts (conventional cell)."""
    return tuple(sg for sg in range(1, 231) if _group(sg).check_compatible(list(counts))[0])


@functools.lru_cache(maxsize=230)
def _group(sg: int):
    from pyxtal.symmetry import Group

    return Group(sg)


class RandomSymmetricGenerator(CrystalGenerator):
    """Random crystals in random compatible space groups (pyxtal), the null model of CSP.

    Args:
        max_atoms: largest cell when ``generate`` chooses the number of formula units.
        max_tries: space-group draws per structure before giving up on it.
    """

    name: ClassVar[str] = "random"

    def __init__(self, *, max_atoms: int = 20, max_tries: int = 20) -> None:
        _pyxtal()
        self.max_atoms, self.max_tries = max_atoms, max_tries

    def generate(self, composition: Composition, *, n: int, seed: int = 0, family: str | None = None,
                 max_atoms: int | None = None) -> list[GeneratedStructure]:
        """``n`` random structures; each draws a number of formula units that fits ``max_atoms``."""
        reduced = Composition(composition).reduced_composition
        per_fu = reduced.num_atoms
        limit = max_atoms or self.max_atoms
        if n <= 0 or per_fu > limit or any(abs(a - round(a)) > 1e-6 for a in reduced.values()):
            return []
        rng = np.random.default_rng(seed)
        zs = rng.integers(1, int(limit // per_fu) + 1, size=n)
        out: list[GeneratedStructure] = []
        for i, z in enumerate(zs):
            out += self.generate_cell(reduced * int(z), n=1, seed=int(rng.integers(1 << 31)) + i)
        return out

    def generate_cell(self, cell: Composition, *, n: int, seed: int = 0) -> list[GeneratedStructure]:
        """``n`` random structures with exactly the atoms of ``cell`` (fewer if pyxtal keeps failing)."""
        pyxtal = _pyxtal()
        species = [el.symbol for el in cell.elements]
        counts = tuple(int(round(cell[el])) for el in cell.elements)
        groups = compatible_space_groups(counts)
        rng = np.random.default_rng(seed)
        out: list[GeneratedStructure] = []
        for _ in range(n):
            for _attempt in range(self.max_tries):
                sg = int(rng.choice(groups)) if groups else 1
                crystal = pyxtal.pyxtal()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        crystal.from_random(3, sg, species, list(counts), random_state=int(rng.integers(1 << 31)))
                        if not crystal.valid:
                            continue
                        structure = crystal.to_pymatgen()
                except Exception:  # noqa: BLE001 - pyxtal raises many types for impossible draws; draw again
                    continue
                out.append(GeneratedStructure(structure, self.name, {"generator": self.name, "space_group": sg}))
                break
        return out
