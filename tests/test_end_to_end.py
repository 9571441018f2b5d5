"""The whole path, real components throughout: parser, offline proposer, SMACT, templates, CHGNet.

The demo command runs twice through the real CLI (same seed, same structures); five more requests
run through the Python API with the default settings.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from pymatgen.core import Composition, Structure
from pymatgen.io.cif import CifParser
from smact.screening import smact_validity

from genms_pmg import LanguageStructureGenerator
from genms_pmg.structures.heuristics import shortest_distance

HALOGENS = {"F", "Cl", "Br", "I"}


def _ratio(comp: Composition) -> list[int]:
    reduced = comp.reduced_composition
    return sorted(int(round(v)) for v in reduced.values())


def _check_structure(structure: Structure) -> None:
    """Independent of the search's own 0.5 A screen: every pair of atoms is at least 70% of the sum
    of their atomic radii apart (real oxides and halides: 85-110%), and the formula is SMACT-valid."""
    for i, site in enumerate(structure):
        for neighbour in structure.get_neighbors(site, 4.0):
            limit = 0.7 * (site.specie.atomic_radius + neighbour.specie.atomic_radius)
            assert neighbour.nn_distance >= limit, (structure.composition.reduced_formula, site.specie,
                                                    neighbour.specie, neighbour.nn_distance, limit)
    assert shortest_distance(structure)[0] > 0
    assert smact_validity(structure.composition.reduced_formula)


def _run_cli(out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "genms_pmg.cli", "generate", "a stable spinel oxide containing Mg",
           "-n", "3", "--out", str(out), "--seed", "0", "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    first, second = base / "first", base / "second"
    return (first, _run_cli(first)), (second, _run_cli(second))


def test_demo_writes_three_valid_spinel_cifs(demo_runs):
    (out, proc), _ = demo_runs
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank" in proc.stdout and "E_form" in proc.stdout
    cifs = sorted(out.glob("rank-*.cif"))
    assert len(cifs) >= 3
    results = json.loads((out / "results.json").read_text())
    for cif, cand in zip(cifs, results["candidates"]):
        structure = CifParser(str(cif)).parse_structures(primitive=False)[0]
        comp = structure.composition
        symbols = {el.symbol for el in comp.elements}
        assert {"Mg", "O"} <= symbols and len(symbols) == 3, symbols
        assert _ratio(comp) == [1, 2, 4]
        _check_structure(structure)
        assert math.isfinite(cand["scores"]["e_form_per_atom"])
        assert cand["scores"]["e_form_per_atom"] < 0
    assert len(results["evaluated"]) > len(results["candidates"])
    assert all("path" in c["provenance"] for c in results["candidates"])


def test_demo_is_reproducible_with_the_same_seed(demo_runs):
    (first, p1), (second, p2) = demo_runs
    assert p1.returncode == 0 and p2.returncode == 0
    names1 = sorted(p.name for p in first.glob("rank-*.cif"))
    names2 = sorted(p.name for p in second.glob("rank-*.cif"))
    assert names1 == names2
    for name in names1:
        s1 = CifParser(str(first / name)).parse_structures(primitive=False)[0]
        s2 = CifParser(str(second / name)).parse_structures(primitive=False)[0]
        assert s1.composition == s2.composition
        assert s1.lattice.abc == pytest.approx(s2.lattice.abc, abs=1e-4)
        assert s1.frac_coords.ravel() == pytest.approx(s2.frac_coords.ravel(), abs=1e-4)
        assert [site.species_string for site in s1] == [site.species_string for site in s2]


def _perovskite_fluoride(comp: Composition) -> bool:
    return "F" in {e.symbol for e in comp.elements} and _ratio(comp) == [1, 1, 3]


def _pyrochlore_ti(comp: Composition) -> bool:
    return {"Ti", "O"} <= {e.symbol for e in comp.elements} and _ratio(comp) == [2, 2, 7]


def _elpasolite(comp: Composition) -> bool:
    symbols = {e.symbol for e in comp.elements}
    return len(symbols) == 4 and bool(symbols & HALOGENS) and _ratio(comp) == [1, 1, 2, 6]


def _lead_free_halide_double_perovskite(comp: Composition) -> bool:
    symbols = {e.symbol for e in comp.elements}
    return "Pb" not in symbols and bool(symbols & HALOGENS) and _ratio(comp) == [1, 1, 2, 6]


def _half_heusler_ni(comp: Composition) -> bool:
    symbols = {e.symbol for e in comp.elements}
    return "Ni" in symbols and len(symbols) == 3 and _ratio(comp) == [1, 1, 1]


@pytest.fixture(scope="module")
def generator():
    return LanguageStructureGenerator(seed=0, progress=False)


@pytest.mark.parametrize(
    ("request_text", "fits"),
    [
        ("a cubic perovskite fluoride", _perovskite_fluoride),
        ("a pyrochlore oxide containing Ti", _pyrochlore_ti),
        ("an elpasolite", _elpasolite),
        ("a lead-free halide double perovskite", _lead_free_halide_double_perovskite),
        ("a half-Heusler compound containing Ni", _half_heusler_ni),
    ],
)
def test_family_requests_give_valid_structures(generator, request_text, fits, tmp_path):
    candidates = generator.generate(request_text, n=3)
    assert len(candidates) == 3
    for cand in candidates:
        assert fits(cand.structure.composition), cand.formula
        _check_structure(cand.structure)
        assert math.isfinite(cand.scores["e_form_per_atom"])
        cif = tmp_path / f"{cand.rank}.cif"
        cif.write_text(cand.structure.to(fmt="cif"))
        parsed = CifParser(str(cif)).parse_structures(primitive=False)[0]
        assert parsed.composition.reduced_formula == cand.structure.composition.reduced_formula
    # best first: family members before non-members, relaxed before unrelaxed, then the lowest
    # energy above the hull of the known competing phases
    tiers = [(c.scores.get("check_family_match") is False or _misses_family(c), not c.scores["relaxed"])
             for c in candidates]
    assert tiers == sorted(tiers), tiers
    for a, b in zip(candidates, candidates[1:]):
        if tiers[a.rank - 1] == tiers[b.rank - 1]:
            assert a.scores["e_above_hull"] <= b.scores["e_above_hull"] + 1e-3, (a, b)


def _misses_family(candidate) -> bool:
    return any(c["name"] == "family_match" and c["score"] < 1 for c in candidate.provenance["checks"])
