"""--forget / forget=: a forgotten formula cannot leak through any table the search reads.

Real data throughout (the pinned OQMD-ICSD db, the Materials Project list, pymatgen's mined
substitution table, CHGNet for the hull). LiV2O4 is a verified spinel in the bundled data (OQMD-ICSD
label AB2C4_2_a_d_e_227) and the source of the mixed-valence substitution behind LiMn2O4; MgAl2O4 is
a card example.
"""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Composition

from genms_pmg.cli import main
from genms_pmg.data.forget import forgetting, forgotten, is_forgotten, read_formula_file
from genms_pmg.data.known import KnownFormulaIndex
from genms_pmg.data.oqmd import ReferenceStructureDB
from genms_pmg.errors import UsageError
from genms_pmg.formulas.base import FormulaProposal
from genms_pmg.formulas.heuristics import Novelty
from genms_pmg.request import Request

HIDDEN = "LiV2O4"


def _tables_that_know(formula: str) -> list[str]:
    """Every table the search reads that still tells the formula exists (empty: nothing leaks)."""
    from genms_pmg.formulas.llm_prompts import describe_card
    from genms_pmg.formulas.offline import _family_members
    from genms_pmg.knowledge.families import FAMILIES
    from genms_pmg.knowledge.lookup import evidence_for
    from genms_pmg.knowledge.members import known_members, substitutions
    from genms_pmg.structures.templates import TemplateGenerator

    reduced = Composition(formula).reduced_formula
    leaks = []
    index = KnownFormulaIndex.default()
    if index.is_known(reduced) or index.sources_of(reduced) or reduced in index.formulas():
        leaks.append("known-formula index")
    db = ReferenceStructureDB.default()
    if any(r.formula == reduced for r in db.rows()) or any(r.formula == reduced for r in db.candidates_for(reduced)):
        leaks.append("OQMD-ICSD rows")
    if any(t.formula == reduced for t in TemplateGenerator().templates(reduced)):
        leaks.append("template pool")
    if any(reduced in ev.how for ev in evidence_for(f"like {reduced}").values()):
        leaks.append("family lookup")
    if any(m.formula == reduced for m in known_members("spinel")):
        leaks.append("known members")
    if any(f == reduced for f, *_ in _family_members("spinel")):
        leaks.append("substitution prior")
    if any(s.source == reduced for s in substitutions("spinel", elements=["Sn"])):  # LiSn2O4 via V->Sn
        leaks.append("substitution sources")
    if reduced in describe_card(FAMILIES["spinel"]):
        leaks.append("LLM prompt card examples")
    return leaks


def test_forgotten_formula_leaks_through_no_table_and_returns_after():
    before = _tables_that_know(HIDDEN)
    # the check itself can fail: outside the block every table knows LiV2O4
    assert {"known-formula index", "OQMD-ICSD rows", "template pool", "known members",
            "substitution prior", "substitution sources"} <= set(before)
    with forgetting([HIDDEN]):
        assert is_forgotten("Li2V4O8") and forgotten() == {"LiV2O4"}
        assert _tables_that_know(HIDDEN) == []
        # the proposer may still propose it: for a novelty check it is now new
        verdict = Novelty().evaluate(Request("a new spinel", family="spinel", novel=True),
                                     FormulaProposal(formula=HIDDEN, family="spinel"))
        assert verdict.passed
    assert _tables_that_know(HIDDEN) == before and not forgotten()


def test_card_example_is_forgotten_in_prompts_and_lookup():
    from genms_pmg.formulas.llm_prompts import describe_card
    from genms_pmg.knowledge.families import FAMILIES
    from genms_pmg.knowledge.lookup import evidence_for

    assert "MgAl2O4" in describe_card(FAMILIES["spinel"]) and "spinel" in evidence_for("like MgAl2O4")
    with forgetting(["MgAl2O4"]):
        assert "MgAl2O4" not in describe_card(FAMILIES["spinel"])
        assert "spinel" not in evidence_for("like MgAl2O4")


def test_forgotten_aflow_prototype_compound_is_no_template():
    from genms_pmg.structures.templates import TemplateGenerator

    names = {t.formula for t in TemplateGenerator().templates("HgS")}
    assert "HgS" in names  # zincblende HgS is an AFLOW prototype compound
    with forgetting(["HgS"]):
        assert "HgS" not in {t.formula for t in TemplateGenerator().templates("HgS")}


def test_forgotten_formula_is_not_a_competing_phase():
    from genms_pmg.energy.hull import competing_phases
    from genms_pmg.plugins import create

    phases = competing_phases(create("energy_models", "chgnet"))
    names = {e.name for e in phases.entries(["Li", "V", "O"])[0]}
    assert HIDDEN in names  # the check can fail
    with forgetting([HIDDEN]):
        assert HIDDEN not in {e.name for e in phases.entries(["Li", "V", "O"])[0]}
        assert HIDDEN not in {e.name for e in phases.phase_diagram(["Li", "V", "O"])[0].entries}


def test_forget_file_errors_name_the_line(tmp_path):
    good = tmp_path / "hidden.txt"
    good.write_text("# hidden spinels\nLiV2O4, MgAl2O4\n\nZnFe2O4  # a comment\n")
    assert [Composition(f) for f in read_formula_file(good)] == [Composition(f) for f in ("LiV2O4", "MgAl2O4", "ZnFe2O4")]
    bad = tmp_path / "bad.txt"
    bad.write_text("LiV2O4\nnot-a-formula\n")
    with pytest.raises(UsageError, match="line 2"):
        read_formula_file(bad)
    with pytest.raises(UsageError, match="cannot read"):
        read_formula_file(tmp_path / "missing.txt")


def test_cli_forget_and_novel_against(tmp_path, capsys):
    hidden = tmp_path / "hidden.txt"
    hidden.write_text("LiMn2O4\n")
    assert main(["known", "LiMn2O4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["formulas"][0]["known"]
    assert main(["known", "LiMn2O4", "--json", "--forget", str(hidden)]) == 0
    assert not json.loads(capsys.readouterr().out)["formulas"][0]["known"]
    # known members first without --forget; with it LiMn2O4 is no longer listed as known
    assert main(["propose", "a lithium-containing spinel", "-n", "5", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["formulas"][0]
    assert first["formula"] == "LiMn2O4" and first["reasons"][0].startswith("known spinel")
    assert main(["propose", "a lithium-containing spinel", "-n", "5", "--json", "--forget", str(hidden)]) == 0
    rows = json.loads(capsys.readouterr().out)["formulas"]
    assert not any(r["formula"] == "LiMn2O4" and r["reasons"][0].startswith("known") for r in rows)
    # CuGaS2 is on the MP list only: new against ICSD when asked so explicitly, known otherwise
    assert main(["parse", "a new chalcopyrite with Cu and Ga", "--novel-against", "icsd"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["novel"] and parsed["novel_against"] == ["icsd"]


def test_generator_forget_argument_is_validated():
    from genms_pmg.generator import LanguageStructureGenerator

    gen = LanguageStructureGenerator(forget=["Li2V4O8", "MgAl2O4"], progress=False)
    assert gen.forget == ["LiV2O4", "MgAl2O4"]
    with pytest.raises(UsageError, match="not a chemical formula"):
        LanguageStructureGenerator(forget=["Qq7"])
    with pytest.raises(UsageError, match="novel_against"):
        LanguageStructureGenerator(novel_against=["oqmd"])
