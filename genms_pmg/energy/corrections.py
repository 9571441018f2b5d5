"""Put raw MPtrj GGA/GGA+U energies on the Materials Project 2020 scale.

Universal potentials trained on MPtrj's raw VASP energies (SevenNet, MACE-MP) predict what the
Materials Project calculation would have given *before* MP's corrections: GGA+U energies for
transition-metal oxides and fluorides, plain GGA for everything else, and no fitted anion
corrections. Phases computed that way cannot be compared across chemistries (an Fe oxide's GGA+U
energy and metallic Fe's GGA energy sit on different scales), so before a hull or a formation
energy they get pymatgen's ``MaterialsProject2020Compatibility``, exactly as Matbench Discovery
does for every model that predicts uncorrected energies (it rebuilds a ``ComputedStructureEntry``
with the model's energy and runs ``process_entries``). CHGNet is trained on corrected energies and
needs none of this (``EnergyModel.energy_corrections == "mp2020"``).

What the entry claims about the calculation is what MP would have run: ``run_type`` "GGA+U" and
``hubbards`` set to MPRelaxSet's U values when the most electronegative element is O or F and a
U element (Co Cr Fe Mn Mo Ni V W) is present, else "GGA" with no U. The U values are read from
pymatgen's own MPRelaxSet config, the same table the compatibility checks them against. POTCARs
are not checked (``check_potcar=False``): there was no VASP run.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from pymatgen.core import Composition, Structure

if TYPE_CHECKING:
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

__all__ = ["mp2020_corrected_energy_per_atom", "mp_hubbard_u", "mp_run_parameters"]

log = logging.getLogger(__name__)

_COMPAT: MaterialsProject2020Compatibility | None = None
_LOCK = threading.Lock()


def _compatibility() -> MaterialsProject2020Compatibility:
    """One shared ``MaterialsProject2020Compatibility(check_potcar=False)`` (defaults otherwise)."""
    global _COMPAT
    with _LOCK:
        if _COMPAT is None:
            from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

            _COMPAT = MaterialsProject2020Compatibility(check_potcar=False)
        return _COMPAT


def mp_hubbard_u() -> Mapping[str, Mapping[str, float]]:
    """MPRelaxSet's U values keyed by the most electronegative element ({"O": {"Fe": 5.3, ...}, "F": ...}).

    The compatibility object holds ``MPRelaxSet.CONFIG["INCAR"]["LDAUU"]``; taking it from there
    guarantees the entries we build carry exactly the U values the compatibility expects.
    """
    return _compatibility().u_settings


def mp_run_parameters(composition: Composition | Structure) -> dict[str, object]:
    """``run_type`` and ``hubbards`` of the MP calculation for ``composition``.

    Mirrors MPRelaxSet: U is on when the most electronegative element has a LDAUU table (O, F)
    and the composition holds an element with a non-zero U in that table.
    """
    comp = composition.composition if isinstance(composition, Structure) else Composition(composition)
    elements = sorted((el for el in comp.elements if comp[el] > 0), key=lambda el: el.X)
    if len(elements) < 2:
        return {"run_type": "GGA", "hubbards": {}}
    table = mp_hubbard_u().get(elements[-1].symbol, {})
    hubbards = {el.symbol: float(table[el.symbol]) for el in elements if float(table.get(el.symbol, 0)) != 0}
    return {"run_type": "GGA+U" if hubbards else "GGA", "hubbards": hubbards}


def mp2020_corrected_energy_per_atom(
    structures: Sequence[Structure], energies_per_atom: Sequence[float]
) -> np.ndarray:
    """MP2020-corrected energy per atom (eV/atom) for raw MPtrj-scale energies per atom.

    Args:
        structures: the structures the energies belong to (the composition decides the
            corrections; the structure decides oxide vs peroxide/superoxide and sulfide type).
        energies_per_atom: raw (uncorrected) GGA/GGA+U energies per atom, eV/atom.

    Returns:
        Corrected energies per atom, NaN where the input is NaN or the compatibility rejects the
        entry (it should not, since the U values come from the same table it checks).

    Raises:
        ValueError: the two sequences differ in length.
    """
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    structures = list(structures)
    energies = np.asarray(energies_per_atom, dtype=float).reshape(-1)
    if len(structures) != len(energies):
        raise ValueError(f"{len(structures)} structures but {len(energies)} energies")
    out = np.full(len(energies), np.nan)
    compat = _compatibility()
    for i, (structure, e_per_atom) in enumerate(zip(structures, energies)):
        if not math.isfinite(e_per_atom) or len(structure) == 0:
            continue
        try:
            entry = ComputedStructureEntry(
                structure, float(e_per_atom) * structure.composition.num_atoms,
                parameters=mp_run_parameters(structure), entry_id=f"genms-{i}",
            )
            with warnings.catch_warnings():  # "Failed to guess oxidation states ..." and the like
                warnings.simplefilter("ignore")
                processed = compat.process_entry(entry, on_error="ignore")
        except Exception as exc:  # noqa: BLE001 - one odd structure must not sink the batch
            log.debug("MP2020 correction failed for structure %d (%s): %s", i, structure.formula, exc)
            continue
        if processed is None:
            log.debug("MP2020 compatibility rejected structure %d (%s)", i, structure.formula)
            continue
        out[i] = processed.energy_per_atom
    return out
