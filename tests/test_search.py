"""Algorithm 1 with real plugins: branching, the tree, best-first order, checkpoint and resume."""

from __future__ import annotations

import json

import pytest

from genms_pmg import plugins
from genms_pmg.errors import UsageError
from genms_pmg.parsing import parse_request
from genms_pmg.search import (
    HierarchicalSearch,
    SearchConfig,
    derive_seed,
    ranked_structure_nodes,
)


class CountingGenerator:
    """Wraps the real template generator and counts calls (to see what a resume redoes)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.calls: list[str] = []

    def generate(self, composition, **kwargs):
        self.calls.append(composition.reduced_formula)
        return self.inner.generate(composition, **kwargs)


def _search(generator, *, width=3, formulas=6, structures=2) -> HierarchicalSearch:
    return HierarchicalSearch(
        proposers=[plugins.create("proposers", "offline")],
        formula_heuristics=list(plugins.create_all("formula_heuristics").values()),
        generators=[generator],
        structure_heuristics=list(plugins.create_all("structure_heuristics").values()),
        energy_model=plugins.create("energy_models", "chgnet"),
        config=SearchConfig(formulas=formulas, structures=structures, width=width),
        progress=False,
    )


@pytest.fixture(scope="module")
def request_():
    return parse_request("a rocksalt oxide")


def test_search_expands_the_best_w_formulae_and_keeps_the_tree(request_):
    gen = CountingGenerator(plugins.create("structure_generators", "templates"))
    tree = _search(gen).run(request_, seed=0)
    formulas = [n for n in tree.nodes.values() if n.kind == "formula"]
    assert len(formulas) >= 3
    expanded = [n for n in formulas if n.data.get("expanded")]
    assert len(expanded) == 3 == len(gen.calls)
    best_three = sorted((n for n in formulas if n.passed), key=lambda n: -n.value)[:3]
    assert {n.node_id for n in expanded} == {n.node_id for n in best_three}
    ranked = ranked_structure_nodes(tree)
    assert ranked, "some structure must pass"
    heads = ranked[: len({n.parent for n in ranked})]
    assert len({n.parent for n in heads}) == len(heads), "the best structure of each formula comes first"
    checked = []
    for node in ranked:
        assert tree.path(node.node_id)[0] == "root"
        info = node.data["generator_info"]
        if node.data.get("relaxed") and info.get("template_formula") == node.label and \
                info.get("template_stability") is not None and info["template_stability"] <= 0.0:
            # the compound itself, which OQMD puts on its hull, relaxed: on or near CHGNet's hull too
            assert node.data["e_above_hull"] <= 0.05, (node.label, node.data["e_above_hull"])
            checked.append(node.label)
    assert checked, "at least one known on-hull rocksalt oxide is among the results"
    # best first: among relaxed structures placed on the hull, the list runs from most to least stable
    hull = [n.data["e_above_hull"] for n in ranked if n.data.get("relaxed") and n.data.get("e_above_hull") is not None]
    assert hull == sorted(hull)


def test_resume_redoes_only_unfinished_formulae(request_, tmp_path):
    checkpoint = tmp_path / "state.json"
    full = _search(CountingGenerator(plugins.create("structure_generators", "templates"))).run(request_, seed=1, checkpoint=checkpoint)
    reference = {n.node_id: n.value for n in ranked_structure_nodes(full)}

    # Simulate an interruption after the first expanded formula: drop what came later.
    state = json.loads(checkpoint.read_text())
    nodes = state["tree"]["nodes"]
    expanded = [n["node_id"] for n in nodes if n["kind"] == "formula" and n["data"].get("expanded")]
    unfinished = expanded[1:]
    for n in nodes:
        if n["node_id"] in unfinished:
            n["data"].pop("expanded")
    state["tree"]["nodes"] = [n for n in nodes if n["parent"] not in unfinished]
    state["tree"]["structures"] = {k: v for k, v in state["tree"]["structures"].items() if k.split("/")[0] not in unfinished}
    checkpoint.write_text(json.dumps(state))

    gen = CountingGenerator(plugins.create("structure_generators", "templates"))
    resumed = _search(gen).run(request_, seed=1, checkpoint=checkpoint)
    assert len(gen.calls) == len(unfinished)
    assert {n.node_id: n.value for n in ranked_structure_nodes(resumed)} == pytest.approx(reference)


def test_a_checkpoint_of_another_request_is_not_reused(request_, tmp_path):
    checkpoint = tmp_path / "state.json"
    _search(CountingGenerator(plugins.create("structure_generators", "templates")), width=1).run(request_, seed=0, checkpoint=checkpoint)
    gen = CountingGenerator(plugins.create("structure_generators", "templates"))
    _search(gen, width=1).run(parse_request("a rocksalt sulfide"), seed=0, checkpoint=checkpoint)
    assert len(gen.calls) == 1


def test_bad_branching_is_a_usage_error():
    with pytest.raises(UsageError, match="--width"):
        SearchConfig(width=0).validate()


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "MgO", "templates") == derive_seed(0, "MgO", "templates")
    assert derive_seed(0, "MgO") != derive_seed(1, "MgO") != derive_seed(0, "CaO")


class BrokenGeneratorPlugin:
    """A deliberately broken third-party generator (a fake by design: it stands for any plugin
    that raises in the middle of a search)."""

    name = "broken"

    def generate(self, composition, **kwargs):
        raise RuntimeError("model file truncated")


def test_a_generator_plugin_that_raises_is_isolated_by_name(request_):
    import warnings as _warnings

    from genms_pmg.errors import GenMSWarning

    search = _search(BrokenGeneratorPlugin(), width=2, formulas=4)
    search.generators.append(plugins.create("structure_generators", "templates"))
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        tree = search.run(request_, seed=0)
    ours = [str(w.message) for w in caught if issubclass(w.category, GenMSWarning)]
    assert len(ours) == 1 and "'broken'" in ours[0] and "RuntimeError: model file truncated" in ours[0]
    expanded = [n for n in tree.nodes.values() if n.kind == "formula" and n.data.get("expanded")]
    assert expanded and all(n.data["generator_errors"] == {"broken": "RuntimeError: model file truncated"}
                            for n in expanded)
    ranked = ranked_structure_nodes(tree)
    assert ranked and all(n.data["generator"] == "templates" for n in ranked)  # the others carried on


def test_ranking_drops_a_repeat_of_a_better_structure_of_the_same_formula():
    """Two generators' cells that relax to one crystal are one answer: the worse copy is dropped,
    a different polymorph and the same crystal under another formula node are kept."""
    from pymatgen.core import Lattice, Structure

    from genms_pmg.search import SearchNode, SearchTree

    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    primitive = rocksalt.get_primitive_structure()  # the same crystal in another cell
    zincblende = Structure.from_spacegroup("F-43m", Lattice.cubic(4.6), ["Mg", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    tree = SearchTree()
    made = [("f0/s0", "f0", rocksalt, 1.0), ("f0/s1", "f0", primitive, 0.9), ("f0/s2", "f0", zincblende, 0.5),
            ("f1/s0", "f1", primitive, 0.8)]
    for node_id, parent, structure, value in made:
        tree.add(SearchNode(node_id, parent, "structure", "MgO", value=value), structure)
    assert [n.node_id for n in ranked_structure_nodes(tree)] == ["f0/s0", "f1/s0", "f0/s2"]
