"""Structure heuristics (min distance, SMACT validity) and the energy sanity check."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Lattice, Structure

from genms_pmg.request import Request
from genms_pmg.structures.base import StructureHeuristic
from genms_pmg.structures.heuristics import (
    MinimumDistance,
    SmactValid,
    energy_is_sane,
    shortest_distance,
)

REQUEST = Request(text="a stable oxide")


def nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_min_distance_passes_normal_crystal():
    result = MinimumDistance().evaluate(REQUEST, nacl())
    assert isinstance(MinimumDistance(), StructureHeuristic)
    assert result.name == "min_distance" and result.passed
    assert 0.9 < result.score <= 1.0
    assert "2.82 Å" in result.reason and "Na-Cl" in result.reason


def test_min_distance_fails_two_close_atoms():
    s = Structure(Lattice.cubic(6.0), ["Na", "Cl"], [[0, 0, 0], [0.3, 0, 0]], coords_are_cartesian=True)
    result = MinimumDistance().evaluate(REQUEST, s)
    assert not result.passed and result.score == 0.0
    assert "0.30 Å" in result.reason


def test_min_distance_sees_periodic_images_and_overlaps():
    tiny = Structure(Lattice.cubic(0.4), ["H"], [[0, 0, 0]])  # atom 0.4 Å from its own image
    assert shortest_distance(tiny)[0] == pytest.approx(0.4)
    assert not MinimumDistance().evaluate(REQUEST, tiny).passed
    across = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0.02, 0, 0], [0.98, 0, 0]])  # 0.2 Å via image
    assert shortest_distance(across)[0] == pytest.approx(0.2)
    same = Structure(Lattice.cubic(5.0), ["Na", "Na"], [[0, 0, 0], [0, 0, 0]])
    assert shortest_distance(same)[0] == pytest.approx(0.0)
    lonely = Structure(Lattice.cubic(12.0), ["Na"], [[0, 0, 0]])
    assert MinimumDistance().evaluate(REQUEST, lonely).passed
    assert math.isinf(shortest_distance(lonely)[0])


def test_min_distance_score_grows_with_ratio():
    squeezed = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert MinimumDistance().evaluate(REQUEST, squeezed).score < MinimumDistance().evaluate(REQUEST, nacl()).score


def test_smact_valid():
    ok = SmactValid().evaluate(REQUEST, nacl())
    assert ok.name == "smact_valid" and ok.passed and ok.score == 1.0
    bad_structure = Structure(Lattice.cubic(5.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
    bad = SmactValid().evaluate(REQUEST, bad_structure)
    assert not bad.passed and "NaCl2" in bad.reason
    alloy = Structure(Lattice.cubic(2.9), ["Cu", "Zn"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert SmactValid().evaluate(REQUEST, alloy).passed


def test_energy_is_sane():
    assert energy_is_sane(-6.3, -3.0)
    assert energy_is_sane(-6.3, None)
    assert not energy_is_sane(float("nan"), -1.0)
    assert not energy_is_sane(-6.3, float("nan"))
    assert not energy_is_sane(-6.3, -5.5)
    assert not energy_is_sane(-16.0, -1.0)
    assert not energy_is_sane(5.5, 0.1)
    assert energy_is_sane(-15.0, 5.0)
