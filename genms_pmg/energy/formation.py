"""Formation energy per atom from a model's total energy and its own elemental references.

Why a separate step: total energies of different compositions cannot be compared, but formation
energies (relative to each element's ground state computed with the *same* model) can, and they
are what "stable" or "low energy" means to a user.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
from pymatgen.core import Composition, Structure

from genms_pmg.energy.base import EnergyModel
from genms_pmg.errors import DataUnavailableError


class MissingReferenceError(DataUnavailableError):
    """An element has no reference energy, so the formation energy is undefined."""

    def __init__(self, elements: Iterable[str], formula: str, model: str | None = None) -> None:
        self.elements = sorted(set(elements))
        self.formula = formula
        which = f" for energy model {model!r}" if model else ""
        super().__init__(
            f"no elemental reference energy{which} for {', '.join(self.elements)}, so the formation "
            f"energy of {formula} cannot be computed; exclude "
            f"{'this element' if len(self.elements) == 1 else 'these elements'} from the request or "
            "rebuild the references with scripts/make_elemental_references.py"
        )


def missing_references(composition: Composition | str, references: Mapping[str, float]) -> list[str]:
    """Elements of ``composition`` that have no entry in ``references``."""
    comp = Composition(composition)
    return sorted(el.symbol for el in comp.elements if el.symbol not in references)


def formation_energy_per_atom(
    composition: Composition | str,
    energy_per_atom: float,
    references: Mapping[str, float],
) -> float:
    """``E/atom - sum_i x_i * mu_i`` in eV/atom, with ``x_i`` the atomic fractions.

    Raises:
        MissingReferenceError: an element of ``composition`` has no reference.
    """
    comp = Composition(composition)
    missing = missing_references(comp, references)
    if missing:
        raise MissingReferenceError(missing, comp.reduced_formula)
    reference = sum(comp.get_atomic_fraction(el) * references[el.symbol] for el in comp.elements)
    return float(energy_per_atom) - float(reference)


def formation_energies_per_atom(
    structures: Sequence[Structure],
    model: EnergyModel,
    *,
    batch_size: int = 16,
    energies_per_atom: Sequence[float] | np.ndarray | None = None,
    on_missing: Literal["raise", "nan"] = "raise",
) -> np.ndarray:
    """Formation energy per atom of each structure with ``model`` and its own references.

    Args:
        structures: the crystals.
        model: energy model; its :meth:`~EnergyModel.elemental_references` are used.
        batch_size: passed to :meth:`~EnergyModel.predict_energy_per_atom`.
        energies_per_atom: already computed energies (eV/atom, as the model predicts them; the model's
            MP2020 corrections are applied here), to avoid a second pass.
        on_missing: "raise" a :class:`MissingReferenceError`, or give NaN for that structure.

    Structures the model cannot evaluate get NaN.
    """
    references = model.elemental_references()
    if energies_per_atom is None:
        energies = model.predict_energy_per_atom(structures, batch_size=batch_size)
    else:
        energies = np.asarray(energies_per_atom, dtype=float)
        if len(energies) != len(structures):
            raise ValueError(f"{len(energies)} energies given for {len(structures)} structures")
    # raw MPtrj energies (SevenNet) must carry the MP2020 corrections before they are compared
    # with elemental references: uncorrected, NiO comes out at +0.43 eV/atom instead of -1.18
    correct = getattr(model, "corrected_energy_per_atom", None)
    if correct is not None and len(structures):
        energies = np.asarray(correct(structures, energies), dtype=float)
    out = np.full(len(structures), np.nan)
    for i, (structure, energy) in enumerate(zip(structures, energies)):
        comp = structure.composition
        missing = missing_references(comp, references)
        if missing:
            if on_missing == "raise":
                raise MissingReferenceError(missing, comp.reduced_formula, model.name)
            continue
        if math.isfinite(energy):
            out[i] = formation_energy_per_atom(comp, energy, references)
    return out
