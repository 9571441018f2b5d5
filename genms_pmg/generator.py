"""The user-facing generators: a request in, ranked :class:`Candidate` structures out.

:class:`StructureGenerator` is the abstract, MSONable base for anything that turns a request into
structures; :class:`LanguageStructureGenerator` is GenMS's hierarchical search built from the
registered plugins (``genms plugins`` lists them).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from monty.json import MSONable
from pymatgen.core import Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from genms_pmg import plugins
from genms_pmg.errors import UsageError
from genms_pmg.formulas.base import FormulaHeuristic, FormulaProposer, display_formula
from genms_pmg.parsing import parse_request
from genms_pmg.request import Request
from genms_pmg.search import (
    HierarchicalSearch,
    SearchConfig,
    SearchTree,
    ranked_structure_nodes,
)
from genms_pmg.structures.heuristics import shortest_distance


class Candidate(MSONable):
    """One generated crystal with its scores and where it came from.

    Attributes:
        structure: the crystal (pymatgen ``Structure``).
        formula: reduced formula.
        scores: ``e_above_hull`` (eV/atom, against every known competing phase, same model) and
            ``decomposition``, ``e_form_per_atom`` and ``energy_per_atom`` (eV/atom, after relaxation
            when ``relaxed``; ``e_form_unrelaxed`` before), ``relaxation`` (steps, convergence),
            ``min_distance`` (Å), ``novel``, ``space_group``, ``r_lo``, ``check_<name>`` ...
        provenance: request, proposer, generator and its template, seed and the path of node ids
            through the search tree.
        rank: 1-based rank among the returned candidates.
    """

    def __init__(self, structure: Structure, formula: str, scores: dict, provenance: dict, rank: int | None = None) -> None:
        self.structure = structure
        self.formula = formula
        self.scores = scores
        self.provenance = provenance
        self.rank = rank

    def to_entry(self) -> ComputedStructureEntry:
        """A ``ComputedStructureEntry`` on the energy model's MP2020-compatible scale (``.data`` has the scores).

        It drops into a pymatgen ``PhaseDiagram`` with competing phases from the same model, e.g.
        ``genms_pmg.energy.hull.competing_phases(model).entries(elements)``.
        """
        per_atom = self.scores.get("corrected_energy_per_atom")
        if per_atom is None:
            per_atom = self.scores.get("energy_per_atom", float("nan"))
        energy = float(per_atom) * len(self.structure)
        return ComputedStructureEntry(
            self.structure, energy, data={**self.scores, "provenance": self.provenance},
            entry_id=f"genms-{self.rank or 0}-{self.formula}",
        )

    def __repr__(self) -> str:
        def fmt(key: str) -> str:
            e = self.scores.get(key)
            return f"{e:.3f} eV/atom" if isinstance(e, float) else "n/a"

        return (f"Candidate(rank={self.rank}, formula={self.formula}, E_hull={fmt('e_above_hull')}, "
                f"E_form={fmt('e_form_per_atom')}, sites={len(self.structure)})")


class StructureGenerator(MSONable):
    """Abstract base: anything that turns a request into ranked crystal structures."""

    @abstractmethod
    def generate(self, request: str | Request, n: int = 3, **kwargs: Any) -> list[Candidate]:
        """Return up to ``n`` candidates, best first."""


class SearchResult(MSONable):
    """Everything a search produced: the parsed request, ranked candidates and the whole tree."""

    def __init__(self, request: Request, candidates: list[Candidate], tree: dict, config: dict, timings: dict) -> None:
        self.request = request
        self.candidates = candidates
        self.tree = tree
        self.config = config
        self.timings = timings

    def evaluated(self) -> list[dict]:
        """Every formula and structure node the search visited, without structures (for tables)."""
        return self.tree["nodes"]


def formula_stage(*, proposer: str = "offline", llm_model: str | None = None,
                  llm_rank: bool = False) -> tuple[FormulaProposer, list[FormulaHeuristic]]:
    """pi_hi and R_hi plugins as the search and ``genms propose`` use them: the named proposer (the
    LLM one gets ``llm_model``) and every formula heuristic, plus the opt-in LLM ranking when asked."""
    options = {"model": llm_model} if proposer == "llm" else {}
    heuristics = plugins.create_all("formula_heuristics")  # opt-in ones (llm_rank) are left out
    if llm_rank:
        heuristics["llm_rank"] = plugins.create("formula_heuristics", "llm_rank", model=llm_model)
    return plugins.create("proposers", proposer, **options), list(heuristics.values())


class LanguageStructureGenerator(StructureGenerator):
    """GenMS: natural language -> formulae (pi_hi, R_hi) -> structures (pi_lo, R_lo), best-first.

    Args:
        seed: fixes every random choice; the same seed gives the same candidates.
        proposer: name of the formula proposer plugin (``genms.proposers``).
        generators: structure generator plugin names (``genms.structure_generators``); None uses
            the default set.
        energy_model: energy model plugin name (``genms.energy_models``).
        formulas: H, formulae proposed.
        structures: L, structures per formula and generator.
        width: W, formulae expanded into structures.
        relax: relax the best structures of each formula before ranking (False: rank unrelaxed).
        relax_top: K, structures relaxed per expanded formula and generator.
        relax_steps: FIRE step cap per relaxation.
        max_e_hull: hard bound on the energy above the hull (eV/atom); None uses the request's
            default ("stable" and "new" requests: the calibrated bound; "metastable": looser).
        hull: rank by energy above the convex hull of the known competing phases (False: by
            formation energy alone, the ranking before stability was judged).
        progress: show progress bars.
        llm_model: model for the LLM path (``proposer="llm"``, ``llm_rank``); None reads
            ``GENMS_LLM_MODEL``. The endpoint comes from ``OPENAI_BASE_URL`` (see ``formulas.llm``).
        llm_rank: add the opt-in LLM ranking heuristic (``llm_rank``) to R_hi.
        forget: formulas treated as unknown everywhere during the search (novelty indexes, template
            pool, family tables, known members, substitution priors, hull; see ``data.forget``):
            hide real compounds and see whether the search finds them again.
        novel_against: count as known only formulas in these indexes ("mp", "icsd") and ask for new
            ones; None keeps the default (the Materials Project list always counts as known).
        client: a ``dask.distributed.Client``: formula expansions run as units on its workers
            (models loaded once per worker); the answer is the same as without it.
        expander: advanced: a ready ``genms_pmg.campaign.DaskExpander`` (what ``Campaign`` passes).
    """

    DEFAULT_GENERATORS: tuple[str, ...] = ("diffusion", "templates")

    def __init__(
        self,
        *,
        seed: int = 0,
        proposer: str = "offline",
        generators: Sequence[str] | None = None,
        energy_model: str = "chgnet",
        formulas: int = 10,
        structures: int = 4,
        width: int = 5,
        progress: bool = True,
        llm_model: str | None = None,
        llm_rank: bool = False,
        relax: bool = True,
        relax_top: int = 1,
        relax_steps: int = 200,
        max_e_hull: float | None = None,
        hull: bool = True,
        forget: Sequence[str] | None = None,
        novel_against: Sequence[str] | None = None,
        client: Any = None,
        expander: Any = None,
    ) -> None:
        if llm_model is not None and proposer != "llm" and not llm_rank:
            raise UsageError("llm_model is used only by proposer='llm' or llm_rank=True; add one of them "
                             "(CLI: --proposer llm or --llm-rank)")
        self.seed = seed
        self.proposer = proposer
        self.generators = list(generators) if generators is not None else list(self.DEFAULT_GENERATORS)
        self.energy_model = energy_model
        self.formulas = formulas
        self.structures = structures
        self.width = width
        self.progress = progress
        self.llm_model = llm_model
        self.llm_rank = llm_rank
        self.relax = relax
        self.relax_top = relax_top
        self.relax_steps = relax_steps
        self.max_e_hull = max_e_hull
        self.hull = hull
        from genms_pmg.data.forget import forgetting

        with forgetting(forget) as hidden:  # validates the formulas now, with a one-line error
            self.forget = sorted(hidden)
        bad = [s for s in (novel_against or ()) if s not in ("mp", "icsd")]
        if bad:
            raise UsageError(f"novel_against takes 'mp' and/or 'icsd', not {bad[0]!r}")
        self.novel_against = list(dict.fromkeys(novel_against)) if novel_against else None
        self._search: HierarchicalSearch | None = None
        # runtime-only: a Dask client or expander is not part of the serialized settings (as_dict
        # stores None; a reloaded generator runs locally)
        self.client = None
        self.expander = None
        self._expander = expander
        if client is not None and expander is None:
            from genms_pmg.campaign import (
                SEARCH_OPTIONS,
                DaskExpander,
                GenMSWorkerPlugin,
            )

            options = {k: getattr(self, k) for k in SEARCH_OPTIONS}
            client.register_plugin(GenMSWorkerPlugin(options))
            self._expander = DaskExpander(client, options, forget=self.forget)

    def _build_search(self) -> HierarchicalSearch:
        if self._search is None:
            config = SearchConfig(formulas=self.formulas, structures=self.structures, width=self.width,
                                  relax_top=self.relax_top if self.relax else 0, relax_steps=self.relax_steps,
                                  max_e_hull=self.max_e_hull, hull=self.hull)
            config.validate()
            proposer, formula_heuristics = formula_stage(
                proposer=self.proposer, llm_model=self.llm_model, llm_rank=self.llm_rank)
            self._search = HierarchicalSearch(
                proposers=[proposer],
                formula_heuristics=formula_heuristics,
                generators=[plugins.create("structure_generators", name) for name in self.generators],
                structure_heuristics=list(plugins.create_all("structure_heuristics").values()),
                energy_model=plugins.create("energy_models", self.energy_model),
                config=config,
                progress=self.progress,
            )
        return self._search

    def search(self, request: str | Request, n: int = 3, *, seed: int | None = None, checkpoint: Path | None = None,
               like: Structure | None = None) -> SearchResult:
        """Run the search and return the full :class:`SearchResult` (candidates and tree).

        ``like``: a crystal whose structure type the answers take (its prototype in the bundled data),
        e.g. ``like=Structure.from_file("mine.cif")`` with the request "new members of this type with Sr".
        """
        from genms_pmg.data.forget import forgetting

        if like is not None:
            if isinstance(request, Request):
                raise UsageError("like= needs the request as text; it is parsed together with the structure")
            request = parse_request(request, like=like)
        with forgetting(self.forget):
            return self._run_search(request, n, seed=seed, checkpoint=checkpoint)

    def _run_search(self, request: str | Request, n: int, *, seed: int | None, checkpoint: Path | None) -> SearchResult:
        if not isinstance(n, int) or n < 1:
            raise UsageError(f"n must be a positive whole number of structures, got {n!r}")
        t0 = time.perf_counter()
        parsed = request if isinstance(request, Request) else parse_request(request)
        if self.novel_against:
            parsed.novel, parsed.novel_against, parsed.novelty_sources = True, list(self.novel_against), list(self.novel_against)
        parse_s = time.perf_counter() - t0
        seed = self.seed if seed is None else seed
        search = self._build_search()
        search.timings = {"parse": parse_s}
        if parsed.sheet == "mxene":
            from genms_pmg.structures.mxene_search import mxene_search

            tree, ranked = mxene_search(parsed, search.energy_model, n=n, limit=self.formulas,
                                        relax_steps=self.relax_steps, timings=search.timings, progress=self.progress)
            candidates = [self._candidate(tree, node_id, rank, parsed, seed) for rank, node_id in enumerate(ranked, 1)]
            for cand, node_id in zip(candidates, ranked):
                cand.scores.update(tree.nodes[node_id].data.get("sheet_scores", {}))
            search.timings["total"] = time.perf_counter() - t0
            return SearchResult(parsed, candidates, tree.as_dict(), asdict(search.config), dict(search.timings))
        tree = search.run(parsed, seed=seed, checkpoint=checkpoint, want=n, expand_many=self._expander)
        formulas = [nd for nd in tree.nodes.values() if nd.kind == "formula"]
        if not any(nd.passed for nd in formulas):
            raise UsageError(
                f"no formula satisfies {parsed.text!r} (tried {len(formulas)}); "
                "relax a constraint (elements, anion, family) and try again"
            )
        from genms_pmg.formulas.ranking import shortfall

        short = shortfall(parsed, formulas, search.config.formulas)
        if short:
            import warnings

            from genms_pmg.errors import GenMSWarning

            warnings.warn(short, GenMSWarning, stacklevel=2)
        nodes = ranked_structure_nodes(tree, tiered=search.scorer.tiered_names())[:n]
        if len(nodes) < n:
            why = _rejection_summary(tree)
            if not nodes:
                raise UsageError(
                    f"no valid structure was found for {parsed.text!r} ({why}); try more formulae or structures "
                    "(--formulas, --structures), another --seed" + (", or a looser --max-e-hull" if "e_above_hull" in why else "")
                )
            import warnings

            from genms_pmg.errors import GenMSWarning

            expanded = sum(1 for nd in formulas if nd.data.get("expanded"))
            warnings.warn(f"found {len(nodes)} of the {n} structures asked for, after expanding {expanded} of "
                          f"{sum(nd.passed for nd in formulas)} formulae ({why}); raise "
                          "--formulas or --structures, or loosen --max-e-hull", GenMSWarning, stacklevel=2)
        candidates = [self._candidate(tree, node.node_id, rank, parsed, seed) for rank, node in enumerate(nodes, 1)]
        search.timings["total"] = time.perf_counter() - t0
        return SearchResult(parsed, candidates, tree.as_dict(), asdict(search.config), dict(search.timings))

    def generate(self, request: str | Request, n: int = 3, *, seed: int | None = None, checkpoint: Path | None = None,
                 like: Structure | None = None) -> list[Candidate]:
        """Return up to ``n`` candidates for ``request``, best first (``like``: see :meth:`search`)."""
        return self.search(request, n, seed=seed, checkpoint=checkpoint, like=like).candidates

    def _candidate(self, tree: SearchTree, node_id: str, rank: int, request: Request, seed: int) -> Candidate:
        node = tree.nodes[node_id]
        formula_node = tree.nodes[node.parent]  # type: ignore[index]
        structure = tree.structures[node_id]
        checks = {c["name"]: c for c in formula_node.checks + node.checks}
        try:
            space_group = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_symbol()
        except Exception:  # spglib can fail on odd cells; the symbol is informative only
            space_group = "?"
        scores = {
            "e_above_hull": node.data.get("e_above_hull"),
            "decomposition": node.data.get("decomposition"),
            "e_form_per_atom": node.data.get("e_form_per_atom"),
            "energy_per_atom": node.data.get("energy_per_atom"),
            "corrected_energy_per_atom": node.data.get("corrected_energy_per_atom"),
            "relaxed": bool(node.data.get("relaxed", False)),
            "e_form_unrelaxed": node.data.get("e_form_unrelaxed", node.data.get("e_form_per_atom")),
            "relaxation": node.data.get("relaxation"),
            "r_lo": node.value,
            "r_hi": formula_node.value,
            "space_group": space_group,
            "num_sites": len(structure),
            "novel": bool(checks["novelty"]["score"] >= 1.0) if "novelty" in checks else None,
        }
        for name, check in checks.items():
            scores[f"check_{name}"] = check["passed"]
        scores["min_distance"] = shortest_distance(structure)[0]
        proposal = formula_node.data["proposal"]
        provenance = {
            "request": request.text,
            "seed": seed,
            "proposer": proposal.get("proposer"),
            "formula_reasons": proposal.get("reasons", []),
            "generator": node.data.get("generator"),
            "generator_info": node.data.get("generator_info", {}),
            "path": tree.path(node_id),
            "hull_notes": node.data.get("hull_notes", []),
            "checks": list(checks.values()),
        }
        return Candidate(structure, display_formula(formula_node.label), scores, provenance, rank)


def _rejection_summary(tree: SearchTree) -> str:
    """'12 structures generated; 7 failed e_above_hull, 2 failed min_distance': why none is left."""
    from collections import Counter

    structures = [nd for nd in tree.nodes.values() if nd.kind == "structure"]
    failed: Counter = Counter()
    for nd in structures:
        if not nd.passed:
            names = [c["name"] for c in nd.checks if not c["passed"]]
            failed[names[-1] if names else "unscored"] += 1
    parts = [f"{count} failed {name}" for name, count in failed.most_common()]
    return f"{len(structures)} structures generated" + ("; " + ", ".join(parts) if parts else "")
