"""In CI a skipped test fails the run (tests/conftest.py): checked on a throwaway test file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _run(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('genms_tests_conftest', {str(TESTS / 'conftest.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(module)\n"
        "pytest_sessionfinish = module.pytest_sessionfinish\n")
    (tmp_path / "test_one_skip.py").write_text(
        "import pytest\n\ndef test_runs():\n    assert True is not False\n\n"
        "def test_skips():\n    pytest.skip('data missing')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_a_skip_fails_the_run_in_ci_only(tmp_path):
    ci = _run(tmp_path, ci=True)
    assert ci.returncode == 1 and "in CI every skip is a failure" in ci.stdout, ci.stdout
    assert "data missing" in ci.stdout  # -rs shows why it skipped
    local = _run(tmp_path, ci=False)
    assert local.returncode == 0, local.stdout
