"""Smoke test of `genms benchmark families` (issue 5): the harness end to end on a tiny setting.

Real search, real CHGNet, real StructureMatcher and CifParser; one family, templates only, so it
stays fast. The benchmark itself (eight or more families) runs outside CI, see benchmarks/README.md.
"""

from __future__ import annotations

import json
import math

from genms_pmg.cli import main


def test_families_benchmark_smoke_runs_resumes_and_refuses_other_settings(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["benchmark", "families", "--families", "spinel", "--samples", "2", "--formulas", "2", "--width", "1",
            "--structures", "1", "--relax-top", "1", "--generator", "templates", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Beside the paper" in printed and "| spinel | paper (GNN E_f) |" in printed
    for name in ("report.md", "summary.json", "records.jsonl", "formation_energy.png", "rates.png", "best_structures.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    fam = summary["families"]["spinel"]
    returned = fam["returned"]
    assert returned["n"] >= 1
    for metric in ("cif", "structural", "composition", "uniqueness", "match"):
        assert 0.0 <= returned[metric] <= 1.0
    assert returned["cif"] == 1.0 and returned["structural"] == 1.0  # the search only returns valid cells
    assert returned["uniqueness"] == 1.0  # both phrasings ask for formulae not in Materials Project
    assert math.isfinite(returned["e_form"]) and fam["relaxed"]["n"] == 1
    assert fam["relaxed"]["e_form_after"] <= fam["relaxed"]["e_form_before"] + 0.05  # relaxing lowers the energy
    cifs = sorted((out / "cifs" / "spinel").glob("*.cif"))
    assert any("relaxed" in p.name for p in cifs) and any("relaxed" not in p.name for p in cifs)
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 3  # two searches and one relaxation

    assert main(args) == 0  # rerun: everything is reused, nothing is appended
    capsys.readouterr()
    assert (out / "records.jsonl").read_text().splitlines() == lines

    other = [("3" if a == "2" and args[i - 1] == "--samples" else a) for i, a in enumerate(args)]
    assert main(other) == 2
    assert "other settings" in capsys.readouterr().err


def test_families_benchmark_unknown_family_is_a_usage_error(tmp_path, capsys):
    assert main(["benchmark", "families", "--families", "perovskit", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "unknown family 'perovskit'" in err and err.count("\n") == 1
    assert main(["benchmark"]) == 2
