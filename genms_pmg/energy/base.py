"""Base class of energy models (R_lo's energetics) in the ``genms.energy_models`` group."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
from pymatgen.core import Structure


class EnergyModel(ABC):
    """Predicts energies of structures; the pymatgen ``get_energy`` idiom plus a batched path.

    Subclasses implement :meth:`predict_energy_per_atom` (batched, energy only: the fast path for
    ranking) and may implement :meth:`calculate` for forces and stress (used by the ASE calculator
    and by relaxation).
    """

    name: ClassVar[str] = "energy_model"
    #: What the predicted energies are. ``"mp2020"``: already on the Materials Project 2020 scale
    #: (GGA/GGA+U mixing and anion corrections included, as CHGNet is trained); ``"uncorrected"``:
    #: raw MPtrj GGA/GGA+U energies (SevenNet, MACE-MP), to which the hull applies pymatgen's
    #: ``MaterialsProject2020Compatibility`` before phases are compared.
    energy_corrections: ClassVar[Literal["mp2020", "uncorrected"]] = "mp2020"

    @abstractmethod
    def predict_energy_per_atom(self, structures: Sequence[Structure], *, batch_size: int = 16) -> np.ndarray:
        """Total energy per atom (eV/atom) of each structure, energy only."""

    def get_energy(self, structure: Structure) -> float:
        """Total energy of ``structure`` in eV (the pymatgen ``EnergyModel`` idiom)."""
        return float(self.predict_energy_per_atom([structure])[0]) * len(structure)

    def calculate(self, structure: Structure) -> dict[str, np.ndarray | float]:
        """Energy (eV), forces (eV/Å, shape (N, 3)) and stress (eV/Å^3, Voigt order, ASE sign).

        Raises:
            NotImplementedError: the model predicts energies only.
        """
        raise NotImplementedError(f"energy model {self.name!r} predicts energies only, not forces or stress")

    @property
    def has_forces(self) -> bool:
        """Whether :meth:`calculate` gives forces and stress (needed for relaxation)."""
        return type(self).calculate is not EnergyModel.calculate

    def calculate_many(self, structures: Sequence[Structure]) -> list[dict[str, np.ndarray | float]]:
        """:meth:`calculate` for several structures; models that batch forces override it."""
        return [self.calculate(s) for s in structures]

    def corrected_energy_per_atom(self, structures: Sequence[Structure], energies_per_atom: Sequence[float]) -> np.ndarray:
        """Energies per atom on the MP2020 scale, so phases of different chemistry compare.

        Identity for ``energy_corrections == "mp2020"``; otherwise pymatgen's
        ``MaterialsProject2020Compatibility`` (see :mod:`genms_pmg.energy.corrections`).
        """
        energies = np.asarray(energies_per_atom, dtype=float)
        if self.energy_corrections == "mp2020":
            return energies
        from genms_pmg.energy.corrections import mp2020_corrected_energy_per_atom

        return mp2020_corrected_energy_per_atom(structures, energies)

    def elemental_references(self) -> dict[str, float]:
        """Energy per atom (eV/atom) of each element's ground state computed with this model.

        Formation energies are only meaningful against references from the same model.
        """
        raise NotImplementedError(f"energy model {self.name!r} has no elemental reference energies")
