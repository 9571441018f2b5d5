"""The README's Python and ASE snippets, run as written."""

from __future__ import annotations

import json
import math

import numpy as np
from monty.json import MontyDecoder, MontyEncoder


def test_python_snippet_as_written():
    from genms_pmg import LanguageStructureGenerator
    gen = LanguageStructureGenerator(seed=0)                 # embedded defaults: no API key, no network
    cands = gen.generate("a stable spinel oxide containing Mg", n=3)   # list[Candidate], best first
    cands[0].structure           # pymatgen Structure
    cands[0].formula, cands[0].scores, cands[0].provenance   # scores: e_above_hull, decomposition, e_form_per_atom, ...
    entry = cands[0].to_entry()  # pymatgen ComputedStructureEntry (MP2020-compatible energy, scores in .data)

    assert len(cands) == 3
    assert entry.energy == cands[0].scores["corrected_energy_per_atom"] * len(cands[0].structure)
    assert entry.data["e_form_per_atom"] == cands[0].scores["e_form_per_atom"]
    assert {"e_above_hull", "decomposition", "e_form_per_atom", "min_distance", "novel", "space_group"} <= set(cands[0].scores)
    assert all(c.scores["e_above_hull"] <= 0.025 for c in cands), "a stable request is bounded"
    assert cands[0].provenance["path"][0] == "root"

    from pymatgen.analysis.phase_diagram import PhaseDiagram

    from genms_pmg.energy.chgnet_model import CHGNetEnergyModel
    from genms_pmg.energy.hull import competing_phases
    known, notes = competing_phases(CHGNetEnergyModel()).entries(["Mg", "Al", "O"])  # notes: reference gaps filled
    diagram = PhaseDiagram(known + [c.to_entry() for c in cands if c.formula == "MgAl2O4"])
    assert {"MgAl2O4", "MgO", "Al2O3"} <= {e.composition.reduced_formula for e in diagram.stable_entries}

    # Candidates and the generator round-trip through as_dict/from_dict (MSONable).
    from genms_pmg import Candidate
    again = json.loads(json.dumps(cands[0].as_dict(), cls=MontyEncoder), cls=MontyDecoder)
    assert isinstance(again, Candidate)
    assert again.structure == cands[0].structure and again.scores == cands[0].scores
    gen2 = LanguageStructureGenerator.from_dict(gen.as_dict())
    assert gen2.as_dict() == gen.as_dict()


def test_ase_snippet_as_written():
    from genms_ase import GenMSCalculator, build, relax
    atoms = build("a cubic perovskite fluoride")             # best candidate as ase.Atoms, in the spirit of ase.build.bulk
    atoms.calc = GenMSCalculator()                           # the energy plugin (CHGNet by default) as an ASE calculator
    relaxed = relax(atoms, fmax=0.05, steps=300)             # FIRE + FrechetCellFilter

    assert "F" in atoms.get_chemical_symbols()
    e0 = atoms.get_potential_energy()
    assert math.isfinite(e0)
    forces = relaxed.get_forces()
    assert forces.shape == (len(relaxed), 3)
    assert relaxed.get_potential_energy() <= e0 + 1e-6
    if relaxed.info["genms_relax_converged"]:
        assert np.abs(forces).max() < 0.05 * 1.5
    assert relaxed.get_stress().shape == (6,)
