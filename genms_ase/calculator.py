"""An ASE calculator over any GenMS energy-model plugin (CHGNet by default)."""

from __future__ import annotations

from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from pymatgen.io.ase import AseAtomsAdaptor


class GenMSCalculator(Calculator):
    """``energy``, ``forces`` and ``stress`` from a ``genms.energy_models`` plugin.

    Args:
        energy_model: a plugin name (``genms plugins`` lists them) or an ``EnergyModel`` instance.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, energy_model: Any = "chgnet", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(energy_model, str):
            from genms_pmg.plugins import create

            energy_model = create("energy_models", energy_model)
        self.model = energy_model

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        structure = AseAtomsAdaptor.get_structure(self.atoms)
        if set(properties) <= {"energy", "free_energy"}:
            energy = self.model.get_energy(structure)  # the fast, energy-only path
            self.results = {"energy": energy, "free_energy": energy}
            return
        out = self.model.calculate(structure)
        self.results = {
            "energy": float(out["energy"]),
            "free_energy": float(out["energy"]),
            "forces": out["forces"],
            "stress": out["stress"],
        }
