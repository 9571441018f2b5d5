"""Paths a careful user takes that had no test (issue 13): Ctrl-C and --resume, --force, --debug,
generate --avoid, the proposer retry loop, space-group hints, NaN energies, match_family."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymatgen.core import Composition

from genms_pmg import plugins
from genms_pmg.cli import CHECKPOINT_NAME, RESULTS_NAME
from genms_pmg.parsing import parse_request
from genms_pmg.search import HierarchicalSearch, SearchConfig, collect_proposals

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = ["--formulas", "6", "--structures", "2", "--width", "4", "--no-progress", "--generator", "templates"]


def _genms(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "genms_pmg.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _results(folder: Path) -> list[tuple[str, float]]:
    doc = json.loads((folder / RESULTS_NAME).read_text())
    return [(c["formula"], round(c["scores"]["e_above_hull"], 4)) for c in doc["candidates"]]


def test_ctrl_c_exits_130_and_resume_finishes_the_same_search(tmp_path):
    request = "a stable perovskite oxide containing Sr"
    out = tmp_path / "run"
    proc = _genms("generate", request, "-n", "3", "--out", str(out), *SMALL)
    deadline = time.time() + 600
    while not (out / CHECKPOINT_NAME).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the state is saved after each expanded formula
    assert proc.poll() is None, "the search finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    saved = json.loads((out / CHECKPOINT_NAME).read_text())
    assert not (out / RESULTS_NAME).exists()
    resumed = _genms("generate", request, "-n", "3", "--out", str(out), "--resume", *SMALL)
    _, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err
    fresh = _genms("generate", request, "-n", "3", "--out", str(tmp_path / "fresh"), *SMALL)
    fresh.communicate(timeout=900)
    assert _results(out) == _results(tmp_path / "fresh")  # same seed, same answer, interrupted or not
    assert saved  # the interrupted run had written a non-empty state


def test_force_replaces_only_genms_outputs(tmp_path):
    out = tmp_path / "run"
    first = _genms("generate", "a rocksalt oxide", "-n", "3", "--out", str(out), *SMALL)
    first.communicate(timeout=900)
    assert first.returncode == 0 and len(list(out.glob("rank-*.cif"))) == 3
    (out / "my-notes.txt").write_text("keep me")
    second = _genms("generate", "a rocksalt oxide", "-n", "1", "--out", str(out), "--force", *SMALL)
    second.communicate(timeout=900)
    assert second.returncode == 0
    assert [p.name.startswith("rank-01-") for p in out.glob("rank-*.cif")] == [True]  # stale ranks 2, 3 gone
    assert (out / "my-notes.txt").read_text() == "keep me"


def test_debug_keeps_usage_errors_to_one_line():
    proc = _genms("--debug", "generate", "a perovskite containing Xx")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and err.strip().count("\n") == 0 and err.startswith("genms: error:")


def test_generate_avoid_file_keeps_those_formulae_out(tmp_path):
    avoid = tmp_path / "avoid.txt"
    avoid.write_text("MgO\nCaO  # the two best-known rocksalt oxides\n")
    proc = _genms("generate", "a rocksalt oxide", "-n", "2", "--json", "--avoid", str(avoid), *SMALL)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert set(doc["request"]["avoid_formulas"]) == {"MgO", "CaO"}
    assert not {c["formula"] for c in doc["candidates"]} & {"MgO", "CaO"}
    assert not {n["label"] for n in doc["evaluated"] if n["kind"] == "formula" and n["passed"]} & {"MgO", "CaO"}


class _CountingProposer:
    """The real offline proposer, with its calls recorded."""

    def __init__(self):
        self.inner = plugins.create("proposers", "offline")
        self.name = self.inner.name
        self.excludes: list[set[str]] = []

    def propose(self, request, *, n, seed=0, exclude=()):
        self.excludes.append(set(exclude))
        return self.inner.propose(request, n=n, seed=seed, exclude=exclude)


def test_proposer_is_asked_again_excluding_what_it_gave_while_too_few_pass():
    request = parse_request("a rocksalt oxide")
    counting = _CountingProposer()
    strict = lambda p: "Ba" in Composition(p.formula).as_dict()  # noqa: E731 - only BaO passes
    got = collect_proposals([counting], request, n=4, seed=0, passes=strict, enough=2)
    assert len(counting.excludes) == 3  # asked three times: never two passing
    assert counting.excludes[0] == set() and counting.excludes[1] and counting.excludes[1] < counting.excludes[2]
    assert len({p.formula for p in got}) == len(got)  # nothing proposed twice


class _HintRecorder:
    def __init__(self):
        self.inner = plugins.create("structure_generators", "templates")
        self.name = self.inner.name
        self.hints: list[dict] = []

    def generate(self, composition, **kwargs):
        self.hints.append(kwargs)
        return self.inner.generate(composition, **kwargs)


def _search(generator, energy_model) -> HierarchicalSearch:
    return HierarchicalSearch(
        proposers=[plugins.create("proposers", "offline")],
        formula_heuristics=list(plugins.create_all("formula_heuristics").values()),
        generators=[generator], structure_heuristics=list(plugins.create_all("structure_heuristics").values()),
        energy_model=energy_model, config=SearchConfig(formulas=3, structures=2, width=2, relax_top=0),
        progress=False)


def test_space_group_hint_reaches_generators_that_take_it():
    recorder = _HintRecorder()
    _search(recorder, plugins.create("energy_models", "chgnet")).run(parse_request("a perovskite oxide in Pm-3m"), seed=0)
    assert recorder.hints and all(h.get("space_group") == 221 for h in recorder.hints)
    recorder.hints.clear()
    _search(recorder, plugins.create("energy_models", "chgnet")).run(parse_request("a perovskite oxide"), seed=0)
    assert recorder.hints and all("space_group" not in h for h in recorder.hints)


def test_structures_the_energy_model_cannot_score_are_dropped_with_why():
    """ASE's EMT has no parameters for Mg or O: it returns NaN, and the search drops those structures."""
    sys.path.insert(0, str(EXAMPLES / "plugins"))
    try:
        from emt_energy import EMTEnergyModel
    finally:
        sys.path.pop(0)
    tree = _search(plugins.create("structure_generators", "templates"), EMTEnergyModel()).run(
        parse_request("a rocksalt oxide containing Mg"), seed=0)
    structures = [n for n in tree.nodes.values() if n.kind == "structure"]
    assert structures and not any(n.passed for n in structures)
    reasons = [c["reason"] for n in structures for c in n.checks if c["name"] == "energy_sane" and not c["passed"]]
    assert reasons and all("nan" in r.lower() for r in reasons)


@pytest.mark.parametrize("formula, family, expected", [
    ("SrTiO3", "perovskite", True), ("MgO", "rocksalt", True), ("MgO", "perovskite", False),
    ("MgFe2O4", "spinel", True), ("MgFe2O4", "rocksalt", False),
])
def test_match_family_on_known_structures(formula, family, expected):
    """Real OQMD-ICSD structures of textbook members (their family-labelled relaxation)."""
    from genms_pmg.data.oqmd import ReferenceStructureDB
    from genms_pmg.knowledge.families import FAMILIES
    from genms_pmg.structures.family_match import match_family

    db = ReferenceStructureDB.default()
    labels = {label for card in FAMILIES.values() for label in card.oqmd_prototypes}
    reduced = Composition(formula).reduced_formula
    rows = sorted((r for r in db.candidates_for(formula) if r.formula == reduced and r.proto_name in labels),
                  key=lambda r: r.stability if r.stability is not None else 9)
    assert rows, formula
    assert (match_family(db.structure(rows[0].id), family) is not None) == expected
