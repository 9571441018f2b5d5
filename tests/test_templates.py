"""Template substitution on the real OQMD-ICSD db and pymatgen's AFLOW prototypes."""

from __future__ import annotations


import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from genms_pmg.data.oqmd import ReferenceStructureDB
from genms_pmg.errors import UsageError
from genms_pmg.knowledge.families import FAMILIES
from genms_pmg.structures.base import CrystalGenerator
from genms_pmg.structures.templates import (
    TemplateGenerator,
    _aflow_entries,
    prototype_key,
)

INFO_KEYS = {"template_source", "template_id", "template_name", "template_formula", "proto_label",
             "template_spacegroup", "species_map", "formula_units", "volume_method", "family_match"}


@pytest.fixture(scope="module")
def gen() -> TemplateGenerator:
    g = TemplateGenerator()
    g.generate(Composition("NaCl"), n=1)  # loads the index (built on the very first run)
    return g


def _check(out, formula: str, max_atoms: int = 40) -> None:
    reduced = Composition(formula).reduced_formula
    for g in out:
        s = g.structure
        assert g.generator == "templates" and INFO_KEYS <= set(g.info)
        assert s.composition.reduced_formula == reduced
        assert len(s) <= max_atoms
        dm = s.distance_matrix
        assert np.min(dm[np.triu_indices(len(s), 1)]) > 0.5 if len(s) > 1 else True
        assert 3.0 < s.volume / len(s) < 80.0
    matcher = StructureMatcher()
    for i, a in enumerate(out):
        for b in out[i + 1:]:
            assert not matcher.fit(a.structure, b.structure), "duplicates must be removed"


def _sg(structure) -> str:
    return SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_symbol()


@pytest.mark.parametrize(
    ("formula", "family", "symbol", "sizes"),
    [
        ("MgAl2O4", "spinel", "Fd-3m", {14, 56}),
        ("ZnGa2O4", "spinel", "Fd-3m", {14, 56}),
        ("SrTiO3", "perovskite", "Pm-3m", {5}),
        ("Gd2Ti2O7", "pyrochlore", "Fd-3m", {22, 88}),
        ("K2NaAlF6", "elpasolite", "Fm-3m", {10, 40}),
        ("Cs2AgBiBr6", "elpasolite", "Fm-3m", {10, 40}),
        ("TiNiSn", "half_heusler", "F-43m", {3, 12}),
        ("NaCl", "rocksalt", "Fm-3m", {2, 8}),
        ("Cu2MnAl", "heusler", "Fm-3m", {4, 16}),
    ],
)
def test_family_examples(gen, formula, family, symbol, sizes):
    out = gen.generate(Composition(formula), n=4, seed=0, family=family)
    assert 2 <= len(out) <= 4
    _check(out, formula)
    first = out[0]
    assert first.info["family_match"] is True
    assert _sg(first.structure) == symbol and len(first.structure) in sizes


def test_elpasolite_puts_monovalent_and_trivalent_cations_on_the_right_sites(gen):
    out = gen.generate(Composition("Cs2AgBiBr6"), n=1, family="elpasolite")
    mapping = out[0].info["species_map"]
    template = Composition(out[0].info["template_formula"])
    ox = template.oxi_state_guesses(max_sites=-1)[0]
    inverse = {target: site for site, target in mapping.items()}
    assert ox[inverse["Ag"]] == 1 and ox[inverse["Bi"]] == 3 and ox[inverse["Cs"]] == 1


def test_substitution_when_the_target_is_left_out():
    gen = TemplateGenerator(exclude_formulas=["ZnGa2O4"])
    out = gen.generate(Composition("ZnGa2O4"), n=3, family="spinel")
    _check(out, "ZnGa2O4")
    first = out[0]
    assert first.info["template_formula"] != Composition("ZnGa2O4").reduced_formula
    assert first.info["volume_method"] in {"dls_ratio_geomean", "atomic_volume_ratio"}
    assert set(first.info["species_map"].values()) == {"Zn", "Ga", "O"}
    assert _sg(first.structure) == "Fd-3m"
    conventional = SpacegroupAnalyzer(first.structure, symprec=0.1).get_conventional_standard_structure()
    assert 7.8 < conventional.lattice.a < 8.9  # experiment: 8.33 A


def test_aflow_prototype_is_used_when_no_oqmd_reference_is_left():
    db = ReferenceStructureDB.default()
    every_ab2c4 = {r.formula for r in db.candidates("AB2C4")}
    gen = TemplateGenerator(reference_db=db.without(every_ab2c4))
    out = gen.generate(Composition("ZnGa2O4"), n=2, family="spinel")
    assert out and out[0].info["template_source"] == "aflow"
    assert out[0].info["proto_label"] == "A2BC4_cF56_227_d_a_e"
    assert out[0].info["species_map"] == {"Al": "Ga", "Mg": "Zn", "O": "O"}
    assert _sg(out[0].structure) == "Fd-3m" and len(out[0].structure) == 14
    _check(out, "ZnGa2O4")
    # exclude_formulas also hides AFLOW prototypes of that formula (here the spinel MgAl2O4 itself)
    hidden = TemplateGenerator(reference_db=db.without(every_ab2c4), exclude_formulas=["MgAl2O4"])
    others = hidden.generate(Composition("ZnGa2O4"), n=4)
    assert all(g.info["template_formula"] != "MgAl2O4" for g in others)


def test_same_seed_same_output(gen):
    a = gen.generate(Composition("BaSnS3"), n=4, seed=3, family="perovskite")
    b = gen.generate(Composition("SnBaS3"), n=4, seed=3, family="perovskite")
    assert [x.info for x in a] == [y.info for y in b]
    for x, y in zip(a, b):
        assert np.allclose(x.structure.lattice.matrix, y.structure.lattice.matrix)
        assert np.allclose(x.structure.frac_coords, y.structure.frac_coords)


def test_max_atoms_is_respected(gen):
    out = gen.generate(Composition("MgAl2O4"), n=4, max_atoms=10)
    assert all(len(g.structure) <= 10 for g in out)
    assert gen.generate(Composition("MgAl2O4"), n=4, max_atoms=3) == []


def test_no_template_gives_empty_list(gen):
    assert gen.generate(Composition("Li13Fe7O29"), n=4) == []
    assert gen.generate(Composition("Li7La3Zr2O12"), n=4) == []  # garnet: 96-atom cell > 40
    assert gen.generate(Composition("NaCl"), n=0) == []


def test_bad_input_is_usage_error(gen):
    with pytest.raises(UsageError):
        gen.generate(Composition("NaCl"), n=2, family="no_such_family")
    with pytest.raises(UsageError):
        gen.generate("Qz2", n=2)


def test_generate_after_loading_returns_the_requested_count(gen):
    out = gen.generate(Composition("CaZrO3"), n=4, seed=0, family="perovskite")
    assert len(out) == 4
    assert all(g.structure.composition.reduced_formula == "CaZrO3" for g in out)


def test_is_a_crystal_generator():
    assert issubclass(TemplateGenerator, CrystalGenerator) and TemplateGenerator.name == "templates"


def test_prototype_key_matches_oqmd_and_aflow_labels():
    assert prototype_key("AB2C4_2_a_d_e_227") == prototype_key("A2BC4_cF56_227_d_a_e")
    assert prototype_key("ABC3_1_a_b_c_221") == prototype_key("AB3C_cP5_221_a_c_b")
    assert prototype_key("ABC2_1_a_b_c_225") == prototype_key("AB2C_cF16_225_a_c_b")
    assert prototype_key("ABC3_4_a_c_cd_62") == prototype_key("AB3C_oP20_62_c_cd_a")
    assert prototype_key("AB2C4_2_a_d_e_227") != prototype_key("AB2C4_4_c_e_df_227")
    assert prototype_key("garbage")[0] == "raw"


def test_family_aflow_prototypes_exist_in_pymatgen_library():
    keys = {prototype_key(t.label) for _, t, _ in _aflow_entries()}
    missing = [(k, p) for k, card in FAMILIES.items() for p in card.aflow_prototypes
               if prototype_key(p) not in keys]
    assert not missing
