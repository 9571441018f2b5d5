"""CHGNet energy model, formation energies and relaxation, with the real pretrained model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from genms_pmg.energy.chgnet_model import CHGNetEnergyModel
from genms_pmg.energy.formation import (
    MissingReferenceError,
    formation_energies_per_atom,
    formation_energy_per_atom,
)
from genms_pmg.energy.relax import relax_structure
from genms_pmg.errors import DataUnavailableError, GenMSError


@pytest.fixture(scope="module")
def model() -> CHGNetEnergyModel:
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return CHGNetEnergyModel()


def rocksalt(a: float = 4.21, species: tuple[str, str] = ("Mg", "O")) -> Structure:
    """Primitive two-atom rocksalt cell."""
    conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]])
    return conv.get_primitive_structure()


def test_mgo_energy_is_about_minus_six(model):
    e = model.predict_energy_per_atom([rocksalt()])
    assert e.shape == (1,)
    assert np.isfinite(e[0])
    assert e[0] == pytest.approx(-6.3, abs=0.4)
    assert model.get_energy(rocksalt()) == pytest.approx(2 * e[0], rel=1e-5)


def test_batched_equals_one_by_one(model):
    structures = [rocksalt(), rocksalt(4.4), rocksalt(5.6, ("Na", "Cl")), rocksalt() * (2, 1, 1)]
    batched = model.predict_energy_per_atom(structures, batch_size=3)
    single = np.array([model.predict_energy_per_atom([s])[0] for s in structures])
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert batched[0] == pytest.approx(batched[3], abs=1e-4)  # supercell: same energy per atom


def test_unevaluable_structure_gives_nan_not_crash(model):
    isolated = Structure(Lattice.cubic(15.0), ["Na"], [[0, 0, 0]])
    e = model.predict_energy_per_atom([rocksalt(), isolated, rocksalt()])
    assert np.isnan(e[1]) and np.isfinite(e[0]) and np.isfinite(e[2])
    assert model.predict_energy_per_atom([]).shape == (0,)


def test_calculate_shapes_forces_and_stress(model):
    s = rocksalt(4.3)
    s.translate_sites([0], [0.05, -0.03, 0.02], frac_coords=False)  # non-zero forces
    out = model.calculate(s)
    assert isinstance(out["energy"], float)
    assert out["energy"] / len(s) == pytest.approx(model.predict_energy_per_atom([s])[0], abs=1e-4)
    assert out["forces"].shape == (len(s), 3)
    assert out["stress"].shape == (6,)
    assert np.abs(out["forces"]).max() > 0.05
    np.testing.assert_allclose(out["forces"].sum(axis=0), 0.0, atol=1e-3)
    # ASE convention: stress = (1/V) dE/dstrain, positive for a stretched cell that wants to shrink
    stretched = model.calculate(rocksalt(4.6))["stress"]
    squeezed = model.calculate(rocksalt(3.9))["stress"]
    assert stretched[:3].mean() > 0 > squeezed[:3].mean()


def test_formation_energy_of_mgo(model):
    refs = model.elemental_references()
    assert {"Mg", "O", "Na", "Cl", "Fe"} <= set(refs)
    e = float(model.predict_energy_per_atom([rocksalt()])[0])
    ef = formation_energy_per_atom("MgO", e, refs)
    assert ef < 0
    assert ef == pytest.approx(-3.0, abs=0.5)
    batch = formation_energies_per_atom([rocksalt()], model, energies_per_atom=[e])
    assert batch[0] == pytest.approx(ef)


def test_missing_reference_names_the_element():
    with pytest.raises(MissingReferenceError) as info:
        formation_energy_per_atom("MgO", -6.0, {"Mg": -1.6})
    assert info.value.elements == ["O"] and "for O," in str(info.value)
    assert "MgO" in str(info.value)
    assert isinstance(info.value, DataUnavailableError) and isinstance(info.value, GenMSError)
    assert formation_energy_per_atom("Mg2O2", -6.0, {"Mg": -2.0, "O": -4.0}) == pytest.approx(-3.0)


def test_missing_reference_in_batch(model):
    refs_model = model.elemental_references()
    s = rocksalt()
    out = formation_energies_per_atom([s], _NoRefs(model), on_missing="nan", energies_per_atom=[-6.0])
    assert math.isnan(out[0])
    with pytest.raises(MissingReferenceError, match="Mg, O"):
        formation_energies_per_atom([s], _NoRefs(model), energies_per_atom=[-6.0])
    assert refs_model  # the real model has them


class _NoRefs(CHGNetEnergyModel):
    """CHGNet with an empty reference table (to exercise the missing-reference path)."""

    def __init__(self, base: CHGNetEnergyModel) -> None:
        super().__init__(device=base.device)

    def elemental_references(self) -> dict[str, float]:
        return {}


def test_relax_lowers_energy(model):
    start = rocksalt(4.45)
    e0 = float(model.predict_energy_per_atom([start])[0])
    relaxed, e1 = relax_structure(start, model, fmax=0.05, steps=60)
    assert e1 < e0
    assert relaxed.volume < start.volume
    assert e1 == pytest.approx(model.predict_energy_per_atom([relaxed])[0], abs=1e-3)
    assert relaxed.composition.reduced_formula == "MgO"


def test_relax_of_unevaluable_structure_returns_nan(model):
    isolated = Structure(Lattice.cubic(15.0), ["Na"], [[0, 0, 0]])
    out, e = relax_structure(isolated, model, steps=5)
    assert math.isnan(e) and len(out) == 1
