"""Smoke test of the rediscovery benchmark on one small ionic family (spinel, structures for 2 formulas)."""

from __future__ import annotations

import argparse
import json

import pytest
from pymatgen.core import Composition

from genms_pmg.data.forget import forgetting
from genms_pmg.data.known import KnownFormulaIndex
from genms_pmg.errors import UsageError
from genms_pmg.evaluation.rediscovery import (
    add_arguments,
    eligible_members,
    hidden_set,
    propose,
    run_command,
    scores,
)
from genms_pmg.knowledge.families import FAMILIES
from genms_pmg.knowledge.members import known_members


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_hidden_set_is_seeded_and_eligible():
    eligible = eligible_members("spinel")
    examples = {Composition(e).reduced_formula for e in FAMILIES["spinel"].examples}
    assert len(eligible) >= 5 and not set(eligible) & examples
    on_hull = {m.formula for m in known_members("spinel") if m.verified and m.e_above_hull is not None
               and m.e_above_hull <= 0.0}
    assert set(eligible) <= on_hull
    first = hidden_set("spinel", seed=0, eligible=eligible)
    assert first == hidden_set("spinel", seed=0, eligible=eligible)
    assert len(first) == round(0.2 * len(eligible)) and set(first) <= set(eligible)
    assert hidden_set("spinel", seed=1, eligible=eligible) != first
    assert len(hidden_set("spinel", seed=0, fraction=0.01, eligible=eligible)) == 1  # at least one
    with pytest.raises(UsageError):
        hidden_set("spinel", fraction=0.0, eligible=eligible)


def test_scores_count_hidden_in_rank_order():
    s = scores(["NaCl", "MgAl2O4", "KCl", "ZnFe2O4"], ["ZnFe2O4", "Al2MgO4", "NiCr2O4"], k=2, top=3)
    assert s["hits_at_k"] == 1 and s["precision_at_k"] == 0.5
    assert s["hits_at_top"] == 1 and s["recall_at_top"] == pytest.approx(1 / 3)


def test_rediscovery_on_spinel_writes_consistent_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "rediscovery"
    argv = ["--families", "spinel", "--out", str(out), "--structure-limit", "2", "--no-progress"]
    assert run_command(_args(*argv)) == 0
    for name in ("records.jsonl", "summary.json", "report.md", "rediscovery.png"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["family"] for r in records] == ["spinel"]
    rec = records[0]
    hidden = rec["hidden"]
    assert hidden == hidden_set("spinel", seed=0)
    index = KnownFormulaIndex.default()
    assert all(index.is_known(h) for h in hidden), "hidden members are known outside forgetting"
    with forgetting(hidden):
        assert not any(index.is_known(h) for h in hidden), "and unknown inside it"
    ranked = [p["formula"] for p in rec["proposed"]]
    assert all(isinstance(p["reasons"], list) and p["reasons"] for p in rec["proposed"])
    assert rec["code"] == {} or len(rec["code"]["commit"]) == 40, "records say which code made them"
    assert 0 < len(ranked) <= 50 and [p["rank"] for p in rec["proposed"]] == list(range(1, len(ranked) + 1))
    expected = scores(ranked, hidden, k=20, top=50)
    f = json.loads((out / "summary.json").read_text())["families"]["spinel"]
    for key in ("precision_at_k", "recall_at_top", "hits_at_k", "hits_at_top"):
        assert f[key] == expected[key] == rec[key]
    assert 0.0 <= f["precision_at_k"] <= 1.0 and 0.0 <= f["recall_at_top"] <= 1.0
    assert f["hits_at_k"] <= f["hits_at_top"] <= len(hidden)
    assert rec["hits_at_k"] >= 6, "summed family evidence: 8 of 13 hidden spinels in the top 20 (3 before issue 20)"
    assert [r["formula"] for r in rec["rediscovered"]] == [x for x in ranked if x in hidden]
    # the baseline's pool holds the hidden formulas that fit the template, and its numbers are fractions
    b = rec["baseline"]
    assert set(b["hidden_in_pool"]) <= set(hidden) and b["exhaustive"] and b["pool"] >= len(b["hidden_in_pool"])
    assert b["expected_precision_at_k"] == pytest.approx(len(b["hidden_in_pool"]) / b["pool"])
    assert 0.0 <= b["expected_recall_at_top"] <= 1.0 and len(b["draw"]) == min(50, b["pool"])
    with forgetting(hidden):
        assert not any(index.is_known(x) for x in b["draw"])
    # structures: at most the two best-ranked rediscovered formulas, each against its hidden OQMD entry
    checks = rec["structures"]
    assert len(checks) == min(2, len(rec["rediscovered"]))
    assert [c["formula"] for c in checks] == [r["formula"] for r in rec["rediscovered"][:2]]
    for c in checks:
        assert Composition(c["reference"].split("-")[-1]).reduced_formula == Composition(c["formula"]).reduced_formula
        assert c["n_structures"] >= 1 and isinstance(c["match"], bool)
        assert c["any_match"] or not c["match"]
    report = (out / "report.md").read_text()
    assert "| spinel |" in report and "precision@20" in report
    # the same settings again recompute nothing; other settings in the same folder are refused
    before = (out / "records.jsonl").read_text()
    assert run_command(_args(*argv)) == 0
    assert (out / "records.jsonl").read_text() == before
    with pytest.raises(UsageError, match="other settings"):
        run_command(_args(*argv, "--top", "20"))
    capsys.readouterr()


def test_proposals_are_seeded_and_rejections_are_usage_errors(tmp_path):
    hidden = hidden_set("spinel", seed=0)
    a = propose("spinel", hidden, top=20, seed=0)
    assert a["request_how"] == "parsed" and a["request_parsed"]["novel"]
    assert a == propose("spinel", hidden, top=20, seed=0)
    with pytest.raises(UsageError, match="intermetallic"):
        run_command(_args("--families", "heusler", "--out", str(tmp_path / "x")))
    with pytest.raises(UsageError, match="unknown family"):
        run_command(_args("--families", "spinel,nosuch", "--out", str(tmp_path / "y"), "--no-structures"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_family_evidence_sums_stable_members_site_by_site():
    """A formula one likely swap from several stable members is better supported than one from a
    single member, and a member above the hull counts for less (issue 20, section 5)."""
    from genms_pmg.formulas.offline import _family_evidence

    tb, tm = ((1, "Tb", 3), (1, "V", 5), (4, "O", -2)), ((1, "Tm", 3), (1, "V", 5), (4, "O", -2))
    target = [("A", 1, "Gd", 3), ("B", 1, "V", 5), ("X", 4, "O", -2)]
    one, source = _family_evidence(target, [("TbVO4", tb, 1.0)])
    two, _ = _family_evidence(target, [("TbVO4", tb, 1.0), ("TmVO4", tm, 1.0)])
    unstable, _ = _family_evidence(target, [("TbVO4", tb, 1.0), ("TmVO4", tm, 0.1)])
    assert 0 < one < unstable < two
    assert source == "TbVO4 (Tb+3->Gd+3)"
    # Gd on the vanadium site is no swap of these members: no count- and charge-consistent assignment
    wrong = [("A", 1, "V", 5), ("B", 1, "Gd", 3), ("X", 4, "O", -2)]
    assert _family_evidence(wrong, [("TbVO4", tb, 1.0)])[0] == one  # site order of the target is not its identity
    assert _family_evidence([("A", 2, "Gd", 3), ("X", 3, "O", -2)], [("TbVO4", tb, 1.0)]) == (0.0, "")


def test_hidden_zircon_members_come_back_in_the_top_20():
    """A forgotten formula may still be proposed (data.forget): substitutions of the remaining members
    reach hidden ones, and summed family evidence ranks them first. Before issue 20's fix the
    substitutions skipped forgotten targets and 3 of the 8 hidden zircon-type compounds made the top 20."""
    from genms_pmg.knowledge.members import substitutions

    key = "type:zircon:ABC4_2_a_b_h_141"
    hidden = hidden_set(key, seed=0)
    assert len(hidden) == 8
    with forgetting(hidden):
        reached = {s.formula for s in substitutions(key, elements=["Gd", "Ho", "Sm", "Dy", "V", "P", "O"])}
    assert {"GdVO4", "HoVO4", "SmVO4", "DyPO4"} <= reached
    got = propose(key, hidden, top=20, seed=0)
    hits = [p["formula"] for p in got["proposed"] if p["hidden"]]
    assert len(hits) >= 6, hits
