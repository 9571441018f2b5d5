"""The `genms` command: help, one-line usage errors with exit code 2, nothing of the user's lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from genms_pmg.cli import CHECKPOINT_NAME, main
from genms_pmg.errors import UsageError
from genms_pmg.parsing import parse_request


def genms(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genms_pmg.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("genms: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr  # progress notes may come before it
    assert "Traceback" not in proc.stderr
    return errors[0]


def test_help_lists_every_option():
    proc = genms("generate", "--help")
    assert proc.returncode == 0
    for option in ("-n", "--out", "--seed", "--formulas", "--structures", "--width", "--force", "--json", "--resume"):
        assert option in proc.stdout
    top = genms("--help")
    assert top.returncode == 0 and "generate" in top.stdout and "plugins" in top.stdout


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("   ", "empty"),
        ("hello there, how are you", "found no crystal family"),
        ("a spinel containing only neon", "noble gas"),
        ("a perovskite containing Xx", "Xx"),
    ],
)
def test_bad_requests_are_one_line_usage_errors(request_text, expected, tmp_path):
    proc = genms("generate", request_text, "--out", str(tmp_path / "out"))
    line = _one_line_error(proc)
    assert expected.lower() in line.lower()
    assert not (tmp_path / "out").exists()  # a rejected request creates nothing


def test_zero_structures_is_a_usage_error():
    line = _one_line_error(genms("generate", "a spinel oxide", "-n", "0"))
    assert "-n" in line and "positive" in line


def test_unwritable_out_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = _one_line_error(genms("generate", "a spinel oxide", "--out", str(blocker / "sub")))
    assert "--out" in line
    assert blocker.read_text() == "not a folder"


def test_out_with_files_is_refused_without_force_and_files_are_kept(tmp_path):
    keep = tmp_path / "my-notes.txt"
    keep.write_text("precious")
    line = _one_line_error(genms("generate", "a spinel oxide", "--out", str(tmp_path)))
    assert "--force" in line
    assert keep.read_text() == "precious"


def test_force_writes_beside_the_users_files_and_keeps_them(tmp_path):
    keep = tmp_path / "my-notes.txt"
    keep.write_text("precious")
    args = ("generate", "a rocksalt oxide containing Mg", "-n", "1", "--formulas", "3", "--structures", "1",
            "--width", "1", "--out", str(tmp_path), "--force", "--no-progress")
    proc = genms(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert keep.read_text() == "precious"
    assert len(list(tmp_path.glob("rank-*.cif"))) == 1
    assert not (tmp_path / CHECKPOINT_NAME).exists()
    again = genms(*args, "--json")
    assert again.returncode == 0
    payload = json.loads(again.stdout)
    assert [f for f in payload["files"] if f.endswith(".cif")] == [p.name for p in sorted(tmp_path.glob("rank-*.cif"))]
    assert all((tmp_path / f).is_file() for f in payload["files"]), "every listed file is written (CIFs, pictures)"
    assert keep.read_text() == "precious"


def test_missing_data_offline_says_how_to_provide_it(tmp_path):
    env = {"GENMS_DATA_DIR": str(tmp_path / "empty-cache"), "GENMS_OFFLINE": "1"}
    line = _one_line_error(genms("generate", "a stable spinel oxide containing Mg", "--no-progress", env=env))
    assert "GENMS_DATA_DIR" in line


def test_parse_prints_the_request_as_json(capsys):
    assert main(["parse", "a lead-free halide double perovskite"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["family"] == "double_perovskite"
    assert parsed["excluded_elements"] == ["Pb"]
    assert parsed["anion_classes"] == ["halide"]


def test_plugins_lists_the_builtins(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in ("offline", "templates", "chgnet", "min_distance", "novelty"):
        assert name in out
    assert "genms.energy_models" in out


def test_usage_error_in_process_returns_2(capsys):
    assert main(["generate", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genms: error:") and err.count("\n") == 1


def test_unknown_plugin_is_a_usage_error(tmp_path):
    line = _one_line_error(genms("generate", "a spinel oxide", "--generator", "nope", "--out", str(tmp_path / "o")))
    assert "nope" in line and "templates" in line


def test_propose_json_gives_ranked_formulae_with_scores_and_reasons(capsys):
    text = "a stable pyrochlore oxide that is not in Materials Project"
    assert main(["propose", text, "-n", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    formulas = out["formulas"]
    assert out["request"]["family"] == "pyrochlore" and out["request"]["novel"] is True
    assert len(formulas) >= 15 and all(f["passed"] for f in formulas)
    scores = [f["score"] for f in formulas]
    assert scores == sorted(scores, reverse=True)
    first = formulas[0]
    # the proposer's reason: a radius ratio (enumeration) or the family evidence behind a substitution
    assert any("rA/rB" in r or r.startswith("family evidence") for r in first["reasons"])
    assert any(r.startswith("novelty: not in Materials Project") for r in first["reasons"])
    assert {c["name"] for c in first["checks"]} >= {"charge_neutral", "family_ratio", "novelty"}
    # the same seed gives the same list
    assert main(["propose", text, "-n", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["formulas"] == formulas


def test_propose_all_lists_rejected_formulae_with_why(capsys):
    assert main(["propose", "a spinel oxide containing Mg", "-n", "10", "--all"]) == 0
    assert "score" in capsys.readouterr().out


def test_known_says_where_a_formula_is_found(capsys):
    assert main(["known", "CaTiO3", "LiZnSbO9", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = doc["formulas"]
    assert rows[0]["formula"] == "CaTiO3" and rows[0]["known"] and set(rows[0]["sources"]) == {"mp", "icsd"}
    assert rows[1] == {"formula": "LiZnSbO9", "known": False, "sources": {}}
    # index sizes: the MP list is about 100k reduced formulas, the ICSD subset about 20k (32,163 structures)
    assert 80_000 < doc["indexes"]["mp_formulas"] < 140_000
    assert 10_000 < doc["indexes"]["icsd_formulas"] < 32_163
    assert doc["indexes"]["icsd_in_mp"] < doc["indexes"]["icsd_formulas"]
    assert main(["known", "Ba2MgWO6"]) == 0
    out = capsys.readouterr().out
    assert "known in Materials Project" in out and out.startswith("indexes: Materials Project list")
    # CuGaS2 (chalcopyrite) is missing from the bundled ICSD subset but on the MP list
    assert main(["known", "CuGaS2", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["formulas"][0]
    assert set(row["sources"]) == {"mp"}


def test_known_refuses_absurd_counts():
    line = _one_line_error(genms("known", "Na1000000000000Cl"))
    assert "atoms of one element" in line


def test_known_and_avoid_give_one_line_errors(tmp_path):
    assert "is not a chemical formula" in _one_line_error(genms("known", "Qq2O"))
    bad = tmp_path / "avoid.txt"
    bad.write_text("CaTiO3\nnot a formula\n")
    line = _one_line_error(genms("propose", "a perovskite oxide", "--avoid", str(bad)))
    assert "line 2" in line
    assert "cannot read --avoid" in _one_line_error(genms("propose", "a perovskite oxide", "--avoid", str(tmp_path / "none.txt")))


def test_avoid_file_keeps_listed_formulae_out(tmp_path, capsys):
    avoid = tmp_path / "mine.txt"
    avoid.write_text("# my compounds\nMgTiO3\nZnTiO3  # already made\n")
    assert main(["propose", "an ilmenite oxide containing Ti", "-n", "10", "--json", "--avoid", str(avoid)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["request"]["avoid_formulas"] == ["MgTiO3", "TiZnO3"]  # pymatgen reduced formulae
    got = {f["formula"] for f in out["formulas"]}
    assert got and not got & {"MgTiO3", "ZnTiO3", "TiZnO3"}


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"fingerprint": {}, "tree": {"nodes": [{"bad": 1}]}', '{"tree": '])
def test_resume_on_a_damaged_state_file_is_a_one_line_error(tmp_path, content):
    from genms_pmg.search import HierarchicalSearch, SearchConfig

    state = tmp_path / CHECKPOINT_NAME
    state.write_text(content)
    search = HierarchicalSearch.__new__(HierarchicalSearch)
    search.config = SearchConfig()
    with pytest.raises(UsageError, match="--force") as info:
        search._load_checkpoint(state, parse_request("a spinel oxide"), 0)
    assert str(state) in str(info.value)


def test_the_same_generator_twice_is_refused(tmp_path):
    line = _one_line_error(genms("generate", "a spinel oxide", "--generator", "templates", "--generator", "templates",
                                 "--out", str(tmp_path / "o")))
    assert "each generator once" in line
