"""R_hi heuristics and rank_formulas, with real SMACT and pymatgen.

Tests whose name ends in ``with_csv_mp_index`` use a test-only known-formula index built from the
shared Materials Project formula list, standing in for ``KnownFormulaIndex.default()``.
"""

from __future__ import annotations

import pytest
from pymatgen.core import Composition

from genms_pmg.formulas.base import FormulaProposal
from genms_pmg.formulas.heuristics import (
    ChargeNeutral,
    ElementConstraints,
    FamilyRatio,
    Novelty,
    ValidFormula,
    rank_formulas,
)
from genms_pmg.request import Request


class DictIndex:
    """A two-source index small enough to write by hand."""

    def __init__(self, entries: dict[str, dict[str, list[str]]]) -> None:
        self._entries = {Composition(k).reduced_formula: v for k, v in entries.items()}

    def sources_of(self, formula: str) -> dict[str, list[str]]:
        return dict(self._entries.get(Composition(formula).reduced_formula, {}))

    def is_known(self, formula: str, sources=("mp", "icsd")) -> bool:
        return any(s in sources for s in self.sources_of(formula))


def _p(formula: str, prior: float = 0.5) -> FormulaProposal:
    return FormulaProposal(formula=formula, prior=prior, proposer="test")


PLAIN = Request("anything")
SPINEL = Request("spinel oxide with Mg", family="spinel", required_elements=["Mg"], anion_classes=["oxide"])


@pytest.mark.parametrize("formula,ok", [
    ("MgAl2O4", True), ("Mg(FeO2)2", True), ("NaCl", True),
    ("Fe0.5O", False), ("Xx2O", False), ("", False), ("not a formula!", False),
    ("LiNaKRbCsBeMgCaSrBaO6", False),  # 11 elements
])
def test_valid_formula(formula, ok):
    result = ValidFormula().evaluate(PLAIN, _p(formula))
    assert result.passed is ok and result.score == float(ok) and result.reason


def test_charge_neutral_strict_and_alloys():
    h = ChargeNeutral()
    assert h.evaluate(PLAIN, _p("MgAl2O4")).passed
    assert not h.evaluate(PLAIN, _p("NaCl2")).passed
    assert not h.evaluate(PLAIN, _p("Cu2MnAl")).passed  # ionic reading of an alloy fails when strict
    assert h.evaluate(Request("heusler", family="heusler"), _p("Cu2MnAl")).passed
    assert h.evaluate(Request("a metal", metallic=True), _p("Cu2MnAl")).passed
    assert not h.evaluate(PLAIN, _p("Abc")).passed


def test_family_ratio():
    h = FamilyRatio()
    assert h.evaluate(SPINEL, _p("Mg2TiO4")).passed
    fail = h.evaluate(SPINEL, _p("Fe3O4"))
    assert not fail.passed and "does not match spinel ratio 1:2:4" in fail.reason
    assert h.evaluate(Request("2:4", atom_ratio=[2, 4]), _p("TiO2")).passed  # reduced before comparing
    assert not h.evaluate(Request("113", atom_ratio=[1, 1, 3]), _p("MgAl2O4")).passed
    assert h.evaluate(PLAIN, _p("MgAl2O4")).passed
    # an explicit ratio wins over the family's
    assert h.evaluate(Request("x", family="spinel", atom_ratio=[1, 1, 3]), _p("SrTiO3")).passed


def test_element_constraints():
    h = ElementConstraints()
    assert h.evaluate(SPINEL, _p("MgAl2O4")).passed
    assert "missing required Mg" in h.evaluate(SPINEL, _p("ZnAl2O4")).reason
    assert "no oxide anion" in h.evaluate(SPINEL, _p("MgAl2S4")).reason
    no_pb = Request("no lead", excluded_elements=["Pb"], anion_classes=["halide"])
    assert h.evaluate(no_pb, _p("CsSnI3")).passed
    assert "contains excluded Pb" in h.evaluate(no_pb, _p("CsPbI3")).reason
    small = Request("small", max_atoms=5)
    assert h.evaluate(small, _p("SrTiO3")).passed
    assert not h.evaluate(small, _p("MgAl2O4")).passed


def test_novelty_soft_and_hard():
    index = DictIndex({"LaF3": {"mp": ["mp_e_form:row123"], "icsd": ["1-1603-LaF3"]}})
    h = Novelty(known_index=index)
    soft = h.evaluate(PLAIN, _p("LaF3"))
    assert soft.passed and soft.score == 1.0  # known members are welcome when novelty is not asked
    assert soft.reason == "known in Materials Project (mp_e_form:row123) and ICSD (1-1603-LaF3)"
    assert not h.is_hard(PLAIN)
    novel = Request("novel", novel=True, novelty_sources=["mp", "icsd"])
    assert h.is_hard(novel) and not h.evaluate(novel, _p("LaF3")).passed
    fresh = h.evaluate(novel, _p("La3Zr7F2"))
    assert fresh.passed and fresh.score == 1.0 and fresh.reason == "not in Materials Project and ICSD"
    only_icsd = Request("novel vs ICSD", novel=True, novelty_sources=["icsd"])
    assert "ICSD (1-1603-LaF3)" in h.evaluate(only_icsd, _p("LaF3")).reason
    # an MP-only formula is known to a "not in ICSD" sentence, new only when restricted explicitly
    mp_only = Novelty(known_index=DictIndex({"CuGaS2": {"mp": ["mp_e_form:row7"]}}))
    assert not mp_only.evaluate(only_icsd, _p("CuGaS2")).passed
    explicit = Request("novel vs ICSD only", novel=True, novelty_sources=["icsd"], novel_against=["icsd"])
    assert mp_only.evaluate(explicit, _p("CuGaS2")).passed


def test_novelty_with_csv_mp_index(csv_mp_index):
    h = Novelty(known_index=csv_mp_index)
    known = h.evaluate(SPINEL, _p("MgAl2O4"))
    assert known.passed and known.score == 1.0 and "Materials Project (mp-" in known.reason
    assert not h.evaluate(Request("novel", novel=True, novelty_sources=["mp"]), _p("MgAl2O4")).passed


def test_novelty_defaults_to_known_formula_index(monkeypatch):
    from genms_pmg.data import known

    index = DictIndex({"NaCl": {"mp": ["mp_e_form:row1"]}})
    monkeypatch.setattr(known.KnownFormulaIndex, "default", classmethod(lambda cls: index))
    assert Novelty().evaluate(PLAIN, _p("NaCl")).reason == "known in Materials Project (mp_e_form:row1)"


def test_rank_formulas_drops_hard_failures_and_orders():
    index = DictIndex({"MgAl2O4": {"mp": ["mp-3536"]}})
    heuristics = [ValidFormula(), ChargeNeutral(), FamilyRatio(), ElementConstraints(), Novelty(known_index=index)]
    proposals = [_p("MgAl2O4", 1.0), _p("Mg(GaO2)2", 0.8), _p("MgIn2O4", 0.8), _p("Fe3O4", 0.9), _p("ZnAl2O4", 0.9)]
    ranked = rank_formulas(SPINEL, proposals, heuristics)
    formulas = [p.formula for p, _, _ in ranked]
    # Fe3O4 and ZnAl2O4 fail hard checks; known MgAl2O4 keeps its lead (no novelty penalty when
    # novelty is not asked); the two equal values are ordered alphabetically.
    assert formulas == ["MgAl2O4", "Mg(GaO2)2", "MgIn2O4"]
    assert ranked[0][2] == pytest.approx(0.0)
    assert all(len(results) == 5 for _, results, _ in ranked)
    novel = Request("novel spinel", family="spinel", required_elements=["Mg"], anion_classes=["oxide"], novel=True)
    assert "MgAl2O4" not in [p.formula for p, _, _ in rank_formulas(novel, proposals, heuristics)]
