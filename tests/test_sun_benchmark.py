"""Smoke test of `genms benchmark sun` on one family, with the real SevenNet judge plugin."""

from __future__ import annotations

import json
import math

from genms_pmg.cli import main


def test_sun_benchmark_on_one_family_writes_rates_and_resumes(tmp_path, capsys):
    out = tmp_path / "sun"
    args = ["benchmark", "sun", "--families", "perovskite", "--out", str(out), "--samples", "2", "--formulas", "4",
            "--width", "2", "--calibration", "1", "1", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["rankings"]) == {"before", "after"}
    for ranking in summary["rankings"].values():
        overall = ranking["overall"]
        assert overall["n"] >= 1
        for key in ("stable", "stable_0.1", "unique", "novel", "match", "sun"):
            assert 0.0 <= overall[key] <= 1.0
        assert overall["sun"] <= min(overall["stable"], overall["unique"], overall["novel"])
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    judged = [row for r in records if r["kind"] == "judge" for row in r["rows"]]
    assert judged and all(math.isfinite(row["judge_e_hull"]) for row in judged)
    assert {r["model"] for r in records if r["kind"] == "calibration"} == {"chgnet", "sevennet"}
    calibration = summary["calibration"]["sevennet"]
    assert calibration["n_on_hull"] + calibration["n_above"] + calibration["n_failed"] == 2
    for name in ("report.md", "sun_rates.png", "ranking_vs_judge.png", "calibration.png"):
        assert (out / name).is_file(), name
    assert "S.U.N." in (out / "report.md").read_text()
    # the same command again recomputes nothing: the records file is unchanged
    before = (out / "records.jsonl").read_text()
    assert main(args) == 0
    assert (out / "records.jsonl").read_text() == before
    capsys.readouterr()
    # an unknown judge is a one-line usage error
    assert main(["benchmark", "sun", "--families", "perovskite", "--out", str(tmp_path / "x"), "--judge", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch" in err[0] and "genms-sevennet" in err[0]
    assert not (tmp_path / "x").exists(), "nothing is created for a rejected command"
