"""Relax a pymatgen structure (positions and cell) with any :class:`EnergyModel` that has forces.

Why here and this small: generated candidates are only rough guesses, and a short FIRE
relaxation with a cell filter moves them to the nearest local minimum before their energies are
compared. The ASE user-facing calculator lives in ``genms_ase``; this module keeps a private
minimal one so the pymatgen side needs nothing from it.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from pymatgen.core import Lattice, Structure

from genms_pmg.energy.base import EnergyModel

log = logging.getLogger(__name__)


def _to_structure(atoms: Atoms) -> Structure:
    """Atoms -> Structure without touching the attached calculator."""
    return Structure(
        Lattice(np.array(atoms.cell[:])),
        atoms.get_chemical_symbols(),
        atoms.get_positions(),
        coords_are_cartesian=True,
    )


def _to_atoms(structure: Structure) -> Atoms:
    """Structure -> periodic Atoms (species only, no properties)."""
    return Atoms(
        symbols=[site.specie.symbol for site in structure],
        positions=structure.cart_coords,
        cell=structure.lattice.matrix,
        pbc=True,
    )


class _EnergyModelCalculator(Calculator):
    """ASE calculator over ``EnergyModel.calculate``; remembers the last successful evaluation."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, model: EnergyModel) -> None:
        super().__init__()
        self.model = model
        self.last_good: tuple[Structure, float] | None = None

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:  # noqa: D102
        super().calculate(atoms, properties, system_changes)
        structure = _to_structure(self.atoms)
        result = self.model.calculate(structure)
        energy = float(result["energy"])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.asarray(result["forces"], dtype=float),
            "stress": np.asarray(result["stress"], dtype=float),
        }
        if math.isfinite(energy):
            self.last_good = (structure, energy / len(structure))


def relax_structure(
    structure: Structure,
    model: EnergyModel,
    *,
    fmax: float = 0.05,
    steps: int = 300,
    relax_cell: bool = True,
) -> tuple[Structure, float]:
    """FIRE relaxation (with ``FrechetCellFilter`` when ``relax_cell``) to ``fmax`` eV/Å.

    Returns the relaxed structure and its energy per atom (eV/atom). If the model fails part way
    (e.g. the cell expands until an atom has no neighbours), the last structure it could evaluate
    is returned; if it cannot evaluate even the input, the input comes back with NaN.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    atoms = _to_atoms(structure)
    calc = _EnergyModelCalculator(model)
    atoms.calc = calc
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    try:
        FIRE(target, logfile=None).run(fmax=fmax, steps=steps)
        energy = float(atoms.get_potential_energy()) / len(atoms)
        final = _to_structure(atoms)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed relaxation must not stop a search
        if calc.last_good is None:
            log.warning("relaxation of %s failed at the start: %s", structure.formula, exc)
            return structure.copy(), math.nan
        log.warning("relaxation of %s stopped early: %s", structure.formula, exc)
        final, energy = calc.last_good
    if not math.isfinite(energy):
        return structure.copy(), math.nan
    if structure.site_properties:  # keep per-site labels the caller attached
        for key, values in structure.site_properties.items():
            final.add_site_property(key, values)
    return final, energy
