"""Plugin discovery through real entry points: built-ins, a separately installed plugin, a broken one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genms_pmg import plugins
from genms_pmg.errors import PluginError

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], *, pythonpath: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_builtins_are_registered_in_every_group():
    infos = plugins.discover()
    by_group = {g: {i.name for i in infos if i.group == g} for g in plugins.GROUPS}
    assert "offline" in by_group["proposers"]
    assert {"valid_formula", "charge_neutral", "family_ratio", "element_constraints", "novelty"} <= by_group["formula_heuristics"]
    assert "templates" in by_group["structure_generators"]
    assert "min_distance" in by_group["structure_heuristics"]
    assert "chgnet" in by_group["energy_models"]


def test_builtins_load_and_subclass_their_base():
    from genms_pmg.formulas.base import FormulaHeuristic

    for info in plugins.discover("formula_heuristics"):
        if info.distribution.lower() == "genms":
            assert issubclass(plugins.load("formula_heuristics", info.name), FormulaHeuristic)


def test_unknown_plugin_error_lists_installed_ones():
    with pytest.raises(PluginError) as err:
        plugins.load("proposers", "no-such-proposer")
    message = str(err.value)
    assert "no-such-proposer" in message and "offline" in message and "\n" not in message


def test_unknown_group_is_a_clear_error():
    with pytest.raises(PluginError, match="unknown plugin group"):
        plugins.discover("widgets")


def _fake_distribution(site: Path, name: str, entry_points: str, module_source: str | None = None) -> None:
    """A real installed-distribution layout (dist-info + module) on a PYTHONPATH entry."""
    dist_info = site / f"{name}-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if module_source is not None:
        (site / f"{name.replace('-', '_')}.py").write_text(textwrap.dedent(module_source))


def test_broken_plugin_is_listed_with_its_cause_and_others_still_work(tmp_path):
    _fake_distribution(tmp_path, "genms-broken-example", """
        [genms.formula_heuristics]
        broken_heuristic = genms_broken_example:Missing
        not_a_heuristic = genms_broken_example:NotAHeuristic
        """, module_source="""
        class NotAHeuristic:
            pass
        """)
    result = _run(["genms_pmg.cli", "plugins", "--json"], pythonpath=tmp_path)
    assert result.returncode == 0, result.stderr
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["broken_heuristic"]["state"] == "broken"
    assert "genms-broken-example" in infos["broken_heuristic"]["error"]
    assert "Missing" in infos["broken_heuristic"]["error"]
    assert infos["not_a_heuristic"]["state"] == "broken"
    assert "not a subclass" in infos["not_a_heuristic"]["error"]
    assert infos["offline"]["state"] == "loaded"
    assert infos["charge_neutral"]["state"] == "loaded"


def test_two_plugins_with_one_name_are_an_error(tmp_path):
    _fake_distribution(tmp_path, "genms-clash-example", """
        [genms.proposers]
        offline = genms_clash_example:Other
        """, module_source="class Other: pass\n")
    result = _run(["genms_pmg.cli", "plugins", "--json"], pythonpath=tmp_path)
    infos = [i for i in json.loads(result.stdout) if i["name"] == "offline"]
    assert len(infos) == 2
    assert all(i["state"] == "duplicate" for i in infos)
    assert any("genms-clash-example" in i["error"] for i in infos)


@pytest.fixture(scope="module")
def hhi_plugin_site(tmp_path_factory) -> Path:
    """The example plugin in plugins/genms-hhi, really installed (pip) into a private folder."""
    site = tmp_path_factory.mktemp("hhi-site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(ROOT / "plugins" / "genms-hhi")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return site


def test_example_plugin_is_discovered_after_install(hhi_plugin_site):
    result = _run(["genms_pmg.cli", "plugins", "--json"], pythonpath=hhi_plugin_site)
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["hhi_supply_risk"]["state"] == "loaded"
    assert infos["hhi_supply_risk"]["distribution"] == "genms-hhi"


def test_example_plugin_is_used_by_the_search_despite_a_broken_one(hhi_plugin_site, tmp_path):
    _fake_distribution(tmp_path, "genms-broken-example", """
        [genms.formula_heuristics]
        broken_heuristic = genms_broken_example:Missing
        """, module_source="")
    code = textwrap.dedent("""
        import json
        from genms_pmg import LanguageStructureGenerator
        result = LanguageStructureGenerator(seed=0, formulas=4, structures=1, width=1, progress=False).search(
            "a rocksalt oxide containing Mg", 1)
        checks = [c["name"] for node in result.tree["nodes"] if node["kind"] == "formula" for c in node["checks"]]
        print(json.dumps(checks))
        """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hhi_plugin_site), str(tmp_path)]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipping broken plugin" in result.stderr and "broken_heuristic" in result.stderr
    checks = json.loads(result.stdout.strip().splitlines()[-1])
    assert "hhi_supply_risk" in checks and "broken_heuristic" not in checks
