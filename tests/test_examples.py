"""Every script in examples/ runs (with --quick) and produces what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args, "--out", str(tmp_path), "--quick"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_every_example_is_tested():
    scripts = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
    assert scripts == ["01_pymatgen_phase_diagram.py", "02_ase_relax_eos.py", "03_formula_heuristic_plugin.py",
                       "04_energy_model_plugin.py", "05_batch_requests.py"]


def test_pymatgen_phase_diagram_example(tmp_path):
    out = _run("01_pymatgen_phase_diagram.py", tmp_path=tmp_path)
    cifs = sorted(tmp_path.glob("rank-*.cif"))
    assert cifs and (tmp_path / "phase_diagram.png").stat().st_size > 10_000
    assert re.search(r"known phases in Mg-\w+-O|known phases in \w+-Mg-O|known phases in Al-Mg-O", out)
    assert re.search(r"lies [+-]\d\.\d{3} eV/atom from their hull", out)


def test_ase_eos_example_gives_a_physical_bulk_modulus(tmp_path):
    out = _run("02_ase_relax_eos.py", tmp_path=tmp_path)
    bulk = float(re.search(r"bulk modulus (\d+) GPa", out).group(1))
    assert 100 <= bulk <= 200  # MgO: 160 GPa measured; CHGNet, like PBE, is a little softer
    assert (tmp_path / "eos.png").stat().st_size > 10_000


def test_heuristic_plugin_example_changes_the_ranking(tmp_path):
    out = _run("03_formula_heuristic_plugin.py", tmp_path=tmp_path)
    assert "genms plugins: formula_heuristics light_elements loaded" in out
    assert "changed ranking" in out


def test_energy_model_plugin_example_runs_a_search_with_emt(tmp_path):
    out = _run("04_energy_model_plugin.py", tmp_path=tmp_path)
    assert "('energy_models', 'emt', 'loaded')" in out
    rows = re.findall(r"^\s+\d+\s+(\w+)\s+(-?\d\.\d{3})\s+(-?\d\.\d{3})$", out, re.M)
    assert rows and all(set(re.findall(r"[A-Z][a-z]?", f)) <= {"Cu", "Au"} for f, _, _ in rows)
    assert all(float(e_form) < 0 for _, _, e_form in rows)  # Cu-Au alloys form exothermically (CuAu, Cu3Au)


def test_batch_example_writes_one_table(tmp_path):
    import pandas as pd

    _run("05_batch_requests.py", str(EXAMPLES / "requests.txt"), tmp_path=tmp_path)
    table = pd.read_csv(tmp_path / "candidates.csv")
    assert list(table["request"].unique()) == ["a stable spinel oxide containing Mg", "a rocksalt oxide with Ca"]
    assert (tmp_path / "e_above_hull.png").exists()


@pytest.mark.parametrize("script", ["01_pymatgen_phase_diagram.py", "05_batch_requests.py"])
def test_examples_say_how_to_run_them(script):
    text = (EXAMPLES / script).read_text()
    assert f"python examples/{script}" in text
