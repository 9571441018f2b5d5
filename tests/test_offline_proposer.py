"""The offline pi_hi: real SMACT and pymatgen, no network.

Tests whose name ends in ``with_csv_mp_index`` use a test-only known-formula index built from the
shared Materials Project formula list, standing in for ``KnownFormulaIndex.default()``.
"""

from __future__ import annotations

import re

import pytest
from pymatgen.core import Composition

from genms_pmg.formulas.heuristics import (
    ChargeNeutral,
    ElementConstraints,
    FamilyRatio,
    ValidFormula,
)
from genms_pmg.formulas.offline import OfflineFormulaProposer
from genms_pmg.request import Request

HARD = (ValidFormula(), ChargeNeutral(), FamilyRatio(), ElementConstraints())


@pytest.fixture(scope="module")
def proposer() -> OfflineFormulaProposer:
    return OfflineFormulaProposer()


@pytest.fixture(scope="module")
def enumerator() -> OfflineFormulaProposer:
    """The plain enumeration (no known members listed first), whose site machinery these tests pin."""
    return OfflineFormulaProposer(known_first=False)


REQUESTS = {
    "spinel_oxide_mg": Request("spinel oxide with Mg", family="spinel", required_elements=["Mg"],
                               anion_classes=["oxide"]),
    "perovskite_fluoride": Request("perovskite fluoride", family="perovskite", anion_classes=["fluoride"]),
    "pyrochlore_oxide_ti": Request("pyrochlore oxide with Ti", family="pyrochlore", required_elements=["Ti"],
                                   anion_classes=["oxide"]),
    "elpasolite": Request("an elpasolite", family="elpasolite"),
    "double_perovskite_halide_no_pb": Request("lead-free halide double perovskite", family="double_perovskite",
                                              anion_classes=["halide"], excluded_elements=["Pb"]),
    "half_heusler_ni": Request("half-Heusler with Ni", family="half_heusler", required_elements=["Ni"]),
    "heusler": Request("a Heusler alloy", family="heusler"),
    "rocksalt": Request("rocksalt", family="rocksalt"),
    "rutile_oxide": Request("rutile oxide", family="rutile", anion_classes=["oxide"]),
    "wurtzite_nitride": Request("wurtzite nitride", family="wurtzite", anion_classes=["nitride"]),
}


def _hard_failures(request: Request, proposals) -> list[str]:
    return [f"{p.formula}: {r.name} ({r.reason})" for p in proposals
            for r in (h.evaluate(request, p) for h in HARD) if not r.passed]


@pytest.mark.parametrize("key", sorted(REQUESTS))
def test_family_requests_give_five_valid_formulas(proposer, key):
    request = REQUESTS[key]
    proposals = proposer.propose(request, n=8, seed=0)
    assert len(proposals) >= 5, [p.formula for p in proposals]
    assert not _hard_failures(request, proposals)
    assert len({p.formula for p in proposals}) == len(proposals)
    for p in proposals:
        assert p.proposer == "offline" and p.family == request.family
        assert 0.0 < p.prior <= 1.0 and p.reasons
        if "heusler" in key:
            assert p.oxidation_states == {}  # intermetallic: no ionic states assumed
        else:
            comp = Composition(p.formula)
            assert sum(p.oxidation_states[str(el)] * amt for el, amt in comp.items()) == pytest.approx(0.0)
    priors = [p.prior for p in proposals]
    assert priors == sorted(priors, reverse=True)  # relative to the best candidate, drawn or not


def test_elpasolite_defaults_to_halides(proposer):
    formulas = [p.formula for p in proposer.propose(REQUESTS["elpasolite"], n=10, seed=0)]
    assert all({"F", "Cl", "Br", "I"} & {str(el) for el in Composition(f).elements} for f in formulas)


def test_classic_members_rank_high(proposer):
    spinels = [p.formula for p in proposer.candidates(REQUESTS["spinel_oxide_mg"], limit=5)]
    assert spinels[0] == "MgAl2O4"
    assert "MgAl2O4" in [p.formula for p in proposer.propose(REQUESTS["spinel_oxide_mg"], n=5, seed=0)]
    perovskites = Request("perovskite oxide with Ti", family="perovskite", required_elements=["Ti"],
                          anion_classes=["oxide"])
    top = [p.formula for p in proposer.candidates(perovskites, limit=5)]
    assert {"SrTiO3", "CaTiO3", "BaTiO3"} <= set(top)


def test_reasons_explain_sites_and_probabilities(enumerator):
    proposer = enumerator
    best = proposer.candidates(REQUESTS["spinel_oxide_mg"], limit=1)[0]
    assert re.fullmatch(r"[A-Z][a-z]?\d\+ \(A, tetrahedral\), [A-Z][a-z]?\d\+ \(B, octahedral\), O2-", best.reasons[0])
    assert any(re.match(r"P\([A-Z][a-z]?\d\+\|O2-\)=", r) for r in best.reasons)
    perov = proposer.candidates(REQUESTS["perovskite_fluoride"], limit=1)[0]
    assert any(r.startswith("tolerance factor") for r in perov.reasons)
    hh = proposer.candidates(REQUESTS["half_heusler_ni"], limit=1)[0]
    assert any(r.startswith("VEC 18") for r in hh.reasons)


def test_same_seed_same_list_and_seeds_vary(enumerator):
    proposer = enumerator  # known members come first in a fixed order; the draw varies the rest
    request = REQUESTS["rocksalt"]
    first = [p.as_dict() for p in proposer.propose(request, n=8, seed=3)]
    again = [p.as_dict() for p in OfflineFormulaProposer(known_first=False).propose(request, n=8, seed=3)]
    assert first == again
    others = {tuple(p.formula for p in proposer.propose(request, n=8, seed=s)) for s in range(6)}
    assert len(others) > 1


def test_exclude_removes_formulas_in_any_spelling(proposer):
    request = REQUESTS["spinel_oxide_mg"]
    first = [p.formula for p in proposer.propose(request, n=6, seed=0)]
    second = [p.formula for p in proposer.propose(request, n=6, seed=0, exclude=first)]
    assert second and not set(first) & set(second)
    assert "MgAl2O4" not in [p.formula for p in proposer.propose(request, n=6, seed=0, exclude=["Al2MgO4"])]


@pytest.mark.parametrize("request_", [
    Request("spinel with neon", family="spinel", required_elements=["Ne"]),
    Request("spinel fluoride", family="spinel", anion_classes=["fluoride"]),
    Request("perovskite ratio 1:2", family="perovskite", atom_ratio=[1, 2]),
    Request("tiny pyrochlore", family="pyrochlore", max_atoms=5),
    Request("rocksalt with everything excluded", family="rocksalt", required_elements=["Na"], excluded_elements=["Na"]),
    Request("four required cations in a spinel", family="spinel", required_elements=["Mg", "Al", "Fe", "Zn"]),
])
def test_impossible_requests_give_nothing(proposer, request_):
    assert proposer.propose(request_, n=5, seed=0) == []


def test_generic_requests_without_a_family(proposer):
    oxides = Request("oxides", anion_classes=["oxide"])
    got = proposer.propose(oxides, n=6, seed=0)
    assert len(got) == 6 and not _hard_failures(oxides, got)
    ratio = Request("ABO3", atom_ratio=[1, 1, 3], anion_classes=["oxide"], required_elements=["Ti"])
    got = proposer.propose(ratio, n=6, seed=0)
    assert len(got) >= 5 and not _hard_failures(ratio, got)
    elements = Request("Li and Fe", required_elements=["Li", "Fe"])
    got = proposer.propose(elements, n=6, seed=0)
    assert len(got) >= 5 and not _hard_failures(elements, got)
    metal = Request("a Ni-Al metal", required_elements=["Ni", "Al"], metallic=True)
    got = proposer.propose(metal, n=5, seed=0)
    assert len(got) == 5 and not _hard_failures(metal, got)
    top = proposer.candidates(metal, limit=5)
    assert {len(Composition(p.formula).elements) for p in top} == {2}  # simplest first


def test_metallic_flag_is_noted_for_ionic_families(enumerator):
    proposer = enumerator
    request = Request("metallic rocksalt", family="rocksalt", metallic=True)
    got = proposer.propose(request, n=3, seed=0)
    assert got and all("metallic request ignored: ionic family" in p.reasons for p in got)


def test_novel_requests_skip_known_formulas_with_csv_mp_index(csv_mp_index):
    proposer = OfflineFormulaProposer(known_index=csv_mp_index)
    request = Request("novel spinel oxide with Mg", family="spinel", required_elements=["Mg"],
                      anion_classes=["oxide"], novel=True, novelty_sources=["mp"])
    got = proposer.propose(request, n=6, seed=0)
    assert len(got) >= 5 and not _hard_failures(request, got)
    assert not any(csv_mp_index.is_known(p.formula, sources=("mp",)) for p in got)
    assert "MgAl2O4" not in [p.formula for p in got]


def test_anion_classes_on_intermetallic_families(proposer):
    phosphide = Request("half-Heusler phosphide", family="half_heusler", anion_classes=["phosphide"])
    got = proposer.propose(phosphide, n=5, seed=0)
    assert len(got) == 5 and not _hard_failures(phosphide, got)
    assert all("P" in {str(el) for el in Composition(p.formula).elements} for p in got)
    assert proposer.propose(Request("Heusler oxide", family="heusler", anion_classes=["oxide"]), n=5) == []


def test_small_n_and_bad_anion_class(proposer):
    assert proposer.propose(REQUESTS["rocksalt"], n=0) == []
    assert len(proposer.propose(REQUESTS["rocksalt"], n=1, seed=5)) == 1
    from genms_pmg.errors import UsageError

    with pytest.raises(UsageError, match="unknown anion class"):
        proposer.propose(Request("x", family="rocksalt", anion_classes=["plasmide"]), n=3)


def test_registered_as_the_offline_entry_point():
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group="genms.proposers")}
    assert eps["offline"].load() is OfflineFormulaProposer


def test_two_anion_sites_are_both_filled(enumerator):
    proposer = enumerator
    """Antiperovskite X3BA has anions on B and A: formulas keep the 3:1:1 ratio and balance both."""
    for request, anion in ((Request("antiperovskite", family="antiperovskite"), None),
                           (Request("antiperovskite nitride", family="antiperovskite", anion_classes=["nitride"]), "N"),
                           (Request("antiperovskite chloride", family="antiperovskite", anion_classes=["chloride"]), "Cl")):
        got = proposer.propose(request, n=6, seed=0)
        assert len(got) >= 3 and not _hard_failures(request, got), [p.formula for p in got]
        for p in got:
            comp = Composition(p.formula)
            assert sorted(int(a) for a in comp.values()) == [1, 1, 3]
            assert sum(1 for ox in p.oxidation_states.values() if ox < 0) == 2
            assert sum(p.oxidation_states[str(el)] * amt for el, amt in comp.items()) == pytest.approx(0.0)
            assert anion is None or anion in p.oxidation_states
    assert proposer.propose(Request("antiperovskite fluoride", family="antiperovskite",
                                    anion_classes=["fluoride"]), n=5) == []  # F fits neither anion site
    li = proposer.propose(Request("antiperovskite with Li", family="antiperovskite", required_elements=["Li"]), n=5)
    assert "Li3ClO" in [p.formula for p in li]


def test_sites_that_list_their_anions_use_their_states(enumerator):
    proposer = enumerator
    """Pyrite S2(2-) and skutterudite Sb4(4-): the anion takes the card's -1, not its usual -2 or -3."""
    pyrite = Request("pyrite sulfide", family="pyrite", anion_classes=["sulfide"])
    got = proposer.propose(pyrite, n=8, seed=0)
    assert "FeS2" in [p.formula for p in got] and not _hard_failures(pyrite, got)
    assert all(p.oxidation_states["S"] == -1 for p in got)
    skutterudite = Request("skutterudite with Sb", family="skutterudite", required_elements=["Sb"])
    got = proposer.propose(skutterudite, n=3, seed=0)
    cosb3 = next(p for p in got if p.formula == "CoSb3")
    assert cosb3.oxidation_states == {"Co": 3.0, "Sb": -1.0}
    assert all(p.oxidation_states["Sb"] == -1.0 for p in got)
    # a site without an element list keeps the strict rule: no fluoride spinel, no nitride perovskite
    assert proposer.propose(Request("spinel fluoride", family="spinel", anion_classes=["fluoride"]), n=3) == []
    assert proposer.propose(Request("perovskite nitride", family="perovskite", anion_classes=["nitride"]), n=3) == []
