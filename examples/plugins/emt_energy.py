"""A third-party energy model (R_lo): ASE's EMT potential as a GenMS ``genms.energy_models`` plugin.

EMT (effective medium theory) covers Al, Cu, Ni, Pd, Ag, Pt and Au: good for intermetallic requests
in those elements, instantaneous on a CPU, and a template for wrapping any ASE calculator.
Energies are EMT's own scale, so formation energies use EMT elemental references (computed once).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from genms_pmg.energy.base import EnergyModel

ELEMENTS = ("Al", "Cu", "Ni", "Pd", "Ag", "Pt", "Au")


class EMTEnergyModel(EnergyModel):
    """Energy, forces and stress from ase.calculators.emt.EMT."""

    name = "emt"

    def _atoms(self, structure: Structure):
        unknown = {el.symbol for el in structure.composition.elements} - set(ELEMENTS)
        if unknown:
            raise ValueError(f"EMT has no parameters for {', '.join(sorted(unknown))}; it covers {', '.join(ELEMENTS)}")
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = EMT()
        return atoms

    def predict_energy_per_atom(self, structures: Sequence[Structure], *, batch_size: int = 16) -> np.ndarray:
        out = []
        for s in structures:
            try:
                out.append(self._atoms(s).get_potential_energy() / len(s))
            except ValueError:
                out.append(np.nan)  # an element EMT lacks: the search drops the structure
        return np.array(out)

    def calculate(self, structure: Structure) -> dict:
        atoms = self._atoms(structure)
        return {"energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces(),
                "stress": atoms.get_stress(voigt=True)}

    def elemental_references(self) -> dict[str, float]:
        return dict(_references())


@lru_cache(maxsize=1)
def _references() -> tuple[tuple[str, float], ...]:
    """EMT energy per atom of each element's fcc crystal, cell relaxed."""
    out = []
    for symbol in ELEMENTS:
        atoms = bulk(symbol, "fcc", cubic=True)
        atoms.calc = EMT()
        FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=0.01, steps=200)
        out.append((symbol, float(atoms.get_potential_energy() / len(atoms))))
    return tuple(out)
