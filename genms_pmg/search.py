"""Algorithm 1 of the paper: best-first hierarchical search over formulae, then structures.

The search proposes H formulae (pi_hi), scores them with R_hi, keeps the best W, generates L
structures for each (pi_lo), scores those with R_lo (hard structure checks, then the energy
model's formation energy plus soft checks) and returns the best structure of each formula
first. Every node it visits is kept in a tree so each result carries its path; the tree can be
checkpointed after each formula and a search resumed from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.core import Composition, Structure
from tqdm.auto import tqdm

from genms_pmg.data.forget import forgotten
from genms_pmg.energy.base import EnergyModel
from genms_pmg.errors import GenMSError, GenMSWarning, UsageError
from genms_pmg.formulas.base import (
    FormulaHeuristic,
    FormulaProposal,
    FormulaProposer,
)
from genms_pmg.formulas.heuristics import evaluate_formula
from genms_pmg.request import Request
from genms_pmg.structure_scoring import StructureScorer, rank_key
from genms_pmg.structures.base import CrystalGenerator, StructureHeuristic


def derive_seed(seed: int, *parts: object) -> int:
    """A 32-bit seed from ``seed`` and labels: results of one branch do not depend on the others."""
    digest = hashlib.sha256(":".join([str(seed), *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _accepts(function: Callable, keyword: str) -> bool:
    """Whether a plugin's method takes ``keyword`` (optional hints such as space_group are only
    passed to generators that understand them, so older third-party plugins keep working)."""
    import inspect

    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def collect_proposals(
    proposers: Sequence[FormulaProposer], request: Request, *, n: int, seed: int,
    passes: Callable[[FormulaProposal], bool], enough: int, attempts: int = 3,
) -> list[FormulaProposal]:
    """Up to ``n`` distinct proposals from the proposers in turn.

    A proposer is asked again (up to ``attempts`` times, excluding what it already gave) while
    fewer than ``enough`` proposals pass the hard checks, so a strict request still fills the beam.
    """
    proposals: list[FormulaProposal] = []
    seen: set[str] = set()
    for proposer in proposers:
        for attempt in range(attempts):
            want = n - len(proposals) if attempt == 0 else n
            batch = proposer.propose(request, n=want, seed=derive_seed(seed, proposer.name, attempt), exclude=seen)
            fresh = [p for p in batch if _reduced_formula(p.formula) not in seen]
            for p in fresh:
                seen.add(_reduced_formula(p.formula))
            proposals.extend(fresh)
            if sum(1 for p in proposals if passes(p)) >= enough or not fresh:
                break
        if len(proposals) >= n:
            break
    return proposals


@dataclass
class SearchConfig:
    """Branching of Algorithm 1.

    Attributes:
        formulas: H, formulae proposed (more are asked for when too few pass R_hi).
        structures: L, structures generated per formula by each generator.
        width: W, formulae expanded into structures.
        relax_top: K, structures of each expanded formula and generator relaxed after the energy screen (0: none).
        relax_steps: FIRE step cap of each relaxation.
        max_e_hull: hard energy-above-hull bound in eV/atom, or None for the request's default
            (``structure_scoring.stability_bound``).
        hull: place structures on the convex hull of the competing phases.
    """

    formulas: int = 10
    structures: int = 4
    width: int = 5
    relax_top: int = 1
    relax_steps: int = 200
    max_e_hull: float | None = None
    hull: bool = True

    def validate(self) -> None:
        for name in ("formulas", "structures", "width", "relax_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive whole number, got {value!r}")
        if not isinstance(self.relax_top, int) or self.relax_top < 0:
            raise UsageError(f"--relax-top must be a whole number >= 0 (0: no relaxation), got {self.relax_top!r}")
        if self.max_e_hull is not None and not (isinstance(self.max_e_hull, (int, float)) and math.isfinite(self.max_e_hull)
                                                and self.max_e_hull >= 0):
            raise UsageError(f"--max-e-hull must be a number of eV/atom >= 0, e.g. 0.05; got {self.max_e_hull!r}")


@dataclass
class SearchNode:
    """A node of the search tree: the request, a formula or a structure.

    ``value`` is the heuristic value the search sorts by (higher is better): R_hi for formulae,
    R_lo (minus formation energy plus soft checks) for structures. ``passed`` is False when a
    hard check failed; ``checks`` holds every heuristic verdict.
    """

    node_id: str
    parent: str | None
    kind: str
    label: str
    value: float | None = None
    passed: bool = True
    checks: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)


class SearchTree:
    """The nodes a search visited, by id, with the structures of structure nodes."""

    def __init__(self) -> None:
        self.nodes: dict[str, SearchNode] = {}
        self.structures: dict[str, Structure] = {}

    def add(self, node: SearchNode, structure: Structure | None = None) -> SearchNode:
        self.nodes[node.node_id] = node
        if structure is not None:
            self.structures[node.node_id] = structure
        return node

    def children(self, node_id: str) -> list[SearchNode]:
        return [n for n in self.nodes.values() if n.parent == node_id]

    def path(self, node_id: str) -> list[str]:
        """Ids from the root to ``node_id``."""
        path = []
        current: str | None = node_id
        while current is not None:
            path.append(current)
            current = self.nodes[current].parent
        return path[::-1]

    def as_dict(self) -> dict:
        return {
            "nodes": [asdict(n) for n in self.nodes.values()],
            "structures": {k: s.as_dict() for k, s in self.structures.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> SearchTree:
        tree = cls()
        for nd in d["nodes"]:
            tree.nodes[nd["node_id"]] = SearchNode(**nd)
        tree.structures = {k: Structure.from_dict(s) for k, s in d["structures"].items()}
        return tree


def _write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


class HierarchicalSearch:
    """Best-first GenMS search (Algorithm 1) over plugin components.

    Args:
        proposers: pi_hi, asked in order until H formulae are collected.
        formula_heuristics: R_hi; hard ones prune, soft ones rank.
        generators: pi_lo; each generates L structures per expanded formula.
        structure_heuristics: R_lo checks run before the energy model.
        energy_model: R_lo energetics; formation energies use its own elemental references.
        config: H, L, W.
        progress: show tqdm progress bars.
    """

    def __init__(
        self,
        *,
        proposers: Sequence[FormulaProposer],
        formula_heuristics: Sequence[FormulaHeuristic],
        generators: Sequence[CrystalGenerator],
        structure_heuristics: Sequence[StructureHeuristic],
        energy_model: EnergyModel,
        config: SearchConfig,
        progress: bool = True,
    ) -> None:
        config.validate()
        if not proposers:
            raise UsageError("no formula proposer is available; install one or check `genms plugins`")
        if not generators:
            raise UsageError("no structure generator is available; install one or check `genms plugins`")
        self.proposers = list(proposers)
        self.formula_heuristics = list(formula_heuristics)
        self.generators = list(generators)
        self.structure_heuristics = list(structure_heuristics)
        self.energy_model = energy_model
        self.config = config
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._failed_generators: set[str] = set()  # warned once each
        self.scorer = StructureScorer(energy_model, self.structure_heuristics, relax_top=config.relax_top,
                                      relax_steps=config.relax_steps, max_e_hull=config.max_e_hull, hull=config.hull)

    # -- formula level ---------------------------------------------------------------------
    def _propose(self, request: Request, seed: int) -> list[FormulaProposal]:
        """Collect up to H distinct proposals; ask again (excluding seen ones) while few pass."""
        return collect_proposals(
            self.proposers, request, n=self.config.formulas, seed=seed,
            passes=lambda p: self._hard_pass(request, p), enough=min(self.config.formulas, self.config.width))

    def _hard_pass(self, request: Request, proposal: FormulaProposal) -> bool:
        return all(h.evaluate(request, proposal).passed for h in self.formula_heuristics if h.is_hard(request))

    def _score_formulas(self, request: Request, tree: SearchTree, proposals: list[FormulaProposal]) -> list[SearchNode]:
        nodes = []
        for i, proposal in enumerate(proposals):
            results, passed, value = evaluate_formula(request, proposal, self.formula_heuristics)
            node = SearchNode(
                node_id=f"f{i}", parent="root", kind="formula", label=proposal.formula,
                value=value, passed=passed,
                checks=[r.as_dict() for r in results], data={"proposal": proposal.as_dict()},
            )
            nodes.append(tree.add(node))
        return nodes

    # -- structure level -------------------------------------------------------------------
    def _expand(self, request: Request, tree: SearchTree, formula_node: SearchNode, seed: int) -> None:
        """Generate, check and score L structures per generator for one formula."""
        proposal = FormulaProposal.from_dict(formula_node.data["proposal"])
        composition = Composition(proposal.formula)
        pending: list[SearchNode] = []
        k = 0
        for generator in self.generators:
            t0 = time.perf_counter()
            hints = {"space_group": request.space_group} if request.space_group and _accepts(generator.generate, "space_group") else {}
            try:
                generated = generator.generate(
                    composition, n=self.config.structures, seed=derive_seed(seed, proposal.formula, generator.name),
                    family=request.family or proposal.family, max_atoms=request.max_atoms, **hints,
                )
            except (KeyboardInterrupt, GenMSError):
                raise  # a stop, or a usage error with its own one-line message
            except Exception as err:  # noqa: BLE001 - a broken plugin is isolated, as at load time
                why = " ".join(f"{type(err).__name__}: {err}".split())[:200]
                formula_node.data.setdefault("generator_errors", {})[generator.name] = why
                if generator.name not in self._failed_generators:
                    self._failed_generators.add(generator.name)
                    warnings.warn(f"structure generator plugin {generator.name!r} failed on {proposal.formula} ({why}); "
                                  "the search carries on with the other generators", GenMSWarning, stacklevel=2)
                generated = []
            self.timings["generate"] = self.timings.get("generate", 0.0) + time.perf_counter() - t0
            for item in generated:
                node_id = f"{formula_node.node_id}/s{k}"
                k += 1
                results = [h.evaluate(request, item.structure) for h in self.structure_heuristics]
                passed = all(r.passed for r in results if r.name in self.scorer.hard_names(request))
                node = SearchNode(
                    node_id=node_id, parent=formula_node.node_id, kind="structure", label=proposal.formula,
                    passed=passed, checks=[r.as_dict() for r in results],
                    data={"generator": item.generator, "generator_info": item.info, "num_sites": len(item.structure)},
                )
                tree.add(node, item.structure)
                if passed:
                    pending.append(node)
        self._score_energies(request, tree, pending)

    def _score_energies(self, request: Request, tree: SearchTree, nodes: list[SearchNode]) -> None:
        """R_lo for the structures of one formula: energy screen, relax the best K, hull and bounds
        (:class:`~genms_pmg.structure_scoring.StructureScorer`)."""
        self.scorer.timings = self.timings
        self.scorer.screen(request, tree, nodes)
        self.scorer.relax(request, tree, nodes)
        self.scorer.judge(request, tree, nodes)

    # -- the whole search ------------------------------------------------------------------
    def run(
        self,
        request: Request,
        *,
        seed: int = 0,
        checkpoint: Path | None = None,
        on_formula: Callable[[SearchNode], None] | None = None,
        want: int | None = None,
        expand_many: Callable[[Request, SearchTree, list[SearchNode], int], None] | None = None,
    ) -> SearchTree:
        """Run Algorithm 1 and return the tree; resume from ``checkpoint`` when it matches.

        ``want``: when the hard checks (a stability bound, above all) leave fewer than ``want``
        structures after the W best formulae, the next-best formulae are expanded in turn, up to
        all H, until there are enough: best-first, so a strict request still fills ``-n``.

        ``expand_many``: expands several formula nodes at once (a Dask campaign); it must add each
        node's structure children to the tree exactly as :meth:`expand_unit` makes them and mark the
        nodes expanded. Expansions are independent and seeded per formula, so the tree, and the
        answer, are the same as expanding one after another.
        """
        tree = self._load_checkpoint(checkpoint, request, seed)
        if "root" not in tree.nodes:
            tree.add(SearchNode(node_id="root", parent=None, kind="request", label=request.text, data={"request": request.as_dict()}))
            t0 = time.perf_counter()
            proposals = self._propose(request, seed)
            self.timings["propose"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            self._score_formulas(request, tree, proposals)
            self.timings["score_formulas"] = time.perf_counter() - t0
            self._save_checkpoint(checkpoint, tree, request, seed)
        ranked = sorted(
            (n for n in tree.nodes.values() if n.kind == "formula" and n.passed),
            key=lambda n: (-(n.value if n.value is not None else -math.inf), n.label),
        )
        todo = [n for n in ranked[: self.config.width] if not n.data.get("expanded")]
        if expand_many is not None and todo:
            expand_many(request, tree, todo, seed)
            self._save_checkpoint(checkpoint, tree, request, seed)
            todo = [n for n in todo if not n.data.get("expanded")]
        bar = tqdm(todo, desc="structures", unit="formula", disable=not self.progress or not todo, leave=False)
        for node in bar:
            bar.set_postfix_str(node.label)
            self._expand_and_save(request, tree, node, seed, checkpoint, on_formula)
        for node in ranked[self.config.width:]:
            if want is None or len(ranked_structure_nodes(tree)) >= want:
                break
            if not node.data.get("expanded"):
                if expand_many is not None:
                    expand_many(request, tree, [node], seed)
                    self._save_checkpoint(checkpoint, tree, request, seed)
                if not node.data.get("expanded"):
                    self._expand_and_save(request, tree, node, seed, checkpoint, on_formula)
        return tree

    def expand_unit(self, request: Request, node: SearchNode, seed: int) -> tuple[dict, list[SearchNode], dict]:
        """One unit of work: expand one formula node on its own (generate L structures per
        generator, screen, relax the best K, hull), as :meth:`run` does for that node.

        Returns the formula node's data after expansion, its structure children and their
        structures by node id."""
        import copy

        tree = SearchTree()
        tree.add(SearchNode(node_id="root", parent=None, kind="request", label=request.text))
        own = tree.add(SearchNode(**copy.deepcopy(asdict(node))))
        self._expand(request, tree, own, seed)
        own.data["expanded"] = True
        children = [n for n in tree.nodes.values() if n.parent == own.node_id]
        return own.data, children, {n.node_id: tree.structures[n.node_id] for n in children if n.node_id in tree.structures}

    def _expand_and_save(self, request: Request, tree: SearchTree, node: SearchNode, seed: int,
                         checkpoint: Path | None, on_formula: Callable[[SearchNode], None] | None) -> None:
        self._expand(request, tree, node, seed)
        node.data["expanded"] = True
        self._save_checkpoint(checkpoint, tree, request, seed)
        if on_formula is not None:
            on_formula(node)

    def _fingerprint(self, request: Request, seed: int) -> dict[str, Any]:
        return {
            "request": request.as_dict(), "seed": seed, "config": asdict(self.config),
            "forgotten": sorted(forgotten()),  # a resume under another --forget list starts afresh
            "proposers": [p.name for p in self.proposers], "generators": [g.name for g in self.generators],
            "energy_model": self.energy_model.name,
            # an LLM's answers depend on the model: a resume with another model must start afresh
            "models": sorted({getattr(getattr(x, "settings", None), "model", None) or "" for x in
                              [*self.proposers, *self.formula_heuristics]} - {""}),
            "formula_heuristics": sorted(h.name for h in self.formula_heuristics),
        }

    def _save_checkpoint(self, path: Path | None, tree: SearchTree, request: Request, seed: int) -> None:
        if path is not None:
            _write_json_atomic(path, {"fingerprint": self._fingerprint(request, seed), "tree": tree.as_dict()})

    def _load_checkpoint(self, path: Path | None, request: Request, seed: int) -> SearchTree:
        if path is None or not path.exists():
            return SearchTree()
        damaged = (f"the saved search state {path} is damaged or not a GenMS state file; pass --force to start "
                   "afresh (or delete the file)")
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            raise UsageError(damaged) from None
        if not isinstance(state, dict) or not isinstance(state.get("tree"), dict):
            raise UsageError(damaged)
        try:
            tree = SearchTree.from_dict(state["tree"])
        except Exception:  # noqa: BLE001 - a damaged node of any shape
            raise UsageError(damaged) from None
        if state.get("fingerprint") != json.loads(json.dumps(self._fingerprint(request, seed))):
            return SearchTree()  # another request or settings: a new search, not a resume
        return tree


def _reduced_formula(formula: str) -> str:
    """One spelling per composition, so two proposers' MgAl2O4 and Mg(AlO2)2 count once."""
    try:
        return Composition(formula).reduced_formula
    except Exception:  # invalid formulae are kept as written; ValidFormula rejects them
        return formula


def ranked_structure_nodes(tree: SearchTree, *, tiered: set[str] | frozenset[str] = frozenset({"family_match"})) -> list[SearchNode]:
    """Best structure of each formula first (the paper's x* per plan), then the rest, without repeats.

    Within each group the order is :func:`~genms_pmg.structure_scoring.rank_key`: family match
    (the ``tiered`` checks), relaxed first, then energy above the hull, then formation energy.
    A structure that pymatgen's StructureMatcher finds equal to a better one of the same formula is
    dropped: two generators' cells often relax to the same crystal, which is one answer, not two.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    scored = [n for n in tree.nodes.values() if n.kind == "structure" and n.passed and n.value is not None]
    scored.sort(key=lambda n: rank_key(n, set(tiered)))
    matcher = StructureMatcher()
    best: list[SearchNode] = []
    rest: list[SearchNode] = []
    kept: dict[str, list[Structure]] = {}
    for node in scored:
        structure = tree.structures.get(node.node_id)
        earlier = kept.setdefault(node.parent, [])  # type: ignore[arg-type]
        if structure is not None and any(matcher.fit(structure, other) for other in earlier):
            continue
        (rest if earlier else best).append(node)
        if structure is not None:
            earlier.append(structure)
    return best + rest


__all__ = [
    "HierarchicalSearch",
    "SearchConfig",
    "SearchNode",
    "SearchTree",
    "derive_seed",
    "ranked_structure_nodes",
]
