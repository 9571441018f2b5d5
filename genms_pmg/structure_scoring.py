"""R_lo after the checks: energy screen, relaxation of the best, and stability on the convex hull.

Why three stages: an energy-only pass is cheap (tens of ms per structure) and tells which few
structures of a formula deserve a relaxation (seconds each); only relaxed energies placed on the
hull of every known competing phase say whether a candidate would survive (see
:mod:`genms_pmg.energy.hull`). Ranking is by tiers, then energy above the hull, formation energy
breaking ties:

1. structures that match the requested family (tiered checks) before those that do not;
2. relaxed structures before unrelaxed ones; structures with a hull before those without;
3. higher R_lo value: ``-E_hull`` plus the soft checks' ``weight * (score - 1)``;
4. lower formation energy.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

from genms_pmg.energy.base import EnergyModel
from genms_pmg.energy.formation import formation_energies_per_atom
from genms_pmg.errors import GenMSWarning
from genms_pmg.formulas.base import HeuristicResult
from genms_pmg.request import Request
from genms_pmg.structures.base import StructureHeuristic
from genms_pmg.structures.heuristics import energy_is_sane, shortest_distance

#: Default energy-above-hull bound (eV/atom) for "stable" and "new" requests, chosen by calibration
#: (``benchmarks/results/2026-12-02/sun``): 40 OQMD-ICSD compounds on the OQMD hull and 20 at
#: 0.1-0.3 eV/atom above it, relaxed with CHGNet and judged with their own formula left out of the
#: hull. Bound 0.0 keeps 95% / rejects 75%, 0.025 keeps 100% / rejects 75% (best balanced accuracy,
#: 0.875), 0.05 keeps 100% / rejects 55%, 0.1 keeps 100% / rejects only 30%.
DEFAULT_MAX_E_HULL = 0.025
#: The bound for "metastable" requests.
METASTABLE_MAX_E_HULL = 0.1
#: Relaxed structures closer than this (Å) have collapsed.
MIN_RELAXED_DISTANCE = 0.5


def stability_bound(request: Request, max_e_hull: float | None) -> float | None:
    """The hard E_hull bound (eV/atom) for ``request``, or None when stability was not asked.

    An explicit ``max_e_hull`` wins; "metastable" loosens the default; "stable", "low-energy" and
    requests for new materials get the calibrated default.
    """
    if max_e_hull is not None:
        return float(max_e_hull)
    if request.metastable:
        return METASTABLE_MAX_E_HULL
    if request.stable or request.novel:
        return DEFAULT_MAX_E_HULL
    return None


def rank_key(node, tiered: set[str]) -> tuple:
    """Sort key of a scored structure node (ascending = better); see the module docstring."""
    data = node.data
    misses = sum(1 for c in node.checks if c["name"] in tiered and c["score"] < 1.0)
    e_hull = data.get("e_above_hull")
    has_hull = e_hull is not None and math.isfinite(e_hull)
    e_form = data.get("e_form_per_atom")
    e_form = e_form if e_form is not None and math.isfinite(e_form) else math.inf
    return (misses, not data.get("relaxed", False), not has_hull, -round(node.value, 3), round(e_form, 4), node.node_id)


class StructureScorer:
    """Screen, relax and place on the hull the structures of one formula (used by the search).

    Args:
        energy_model: the R_lo energy plugin.
        heuristics: the structure checks (rerun on relaxed structures).
        relax_top: K, structures of each formula relaxed after the screen (0: none), the best K of
            each generator: unrelaxed energies favour templates (relaxed DFT cells) over generated
            cells that may relax lower, so each generator's best is judged relaxed, on merit.
        relax_steps: FIRE step cap; ``fmax`` the force threshold (eV/Å).
        max_e_hull: explicit hard bound (eV/atom), or None for :func:`stability_bound`.
        hull: compute E_above_hull against the competing phases.
        batched: relax in lockstep with batched force calls (slower on this 2-core CPU, see
            ``benchmarks/results/relaxation_speed.md``).
    """

    def __init__(self, energy_model: EnergyModel, heuristics: Sequence[StructureHeuristic], *,
                 relax_top: int = 1, relax_steps: int = 200, fmax: float = 0.05,
                 max_e_hull: float | None = None, hull: bool = True, batched: bool = False) -> None:
        self.model = energy_model
        self.heuristics = list(heuristics)
        self.relax_top = relax_top
        self.relax_steps = relax_steps
        self.fmax = fmax
        self.max_e_hull = max_e_hull
        self.hull = hull
        self.batched = batched
        self.timings: dict[str, float] = {}
        self._warned_no_forces = False

    def _time(self, key: str, seconds: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + seconds

    def hard_names(self, request: Request) -> set[str]:
        return {h.name for h in self.heuristics if h.is_hard(request)}

    def tiered_names(self) -> set[str]:
        return {h.name for h in self.heuristics if getattr(h, "tiered", False)}

    # -- stage 1: energy-only screen ---------------------------------------------------------
    def screen(self, request: Request, tree, nodes: list) -> None:
        """One batched energy-only call; formation energies; sane-energy check; screen value."""
        if not nodes:
            return
        t0 = time.perf_counter()
        structures = [tree.structures[n.node_id] for n in nodes]
        energies = self.model.predict_energy_per_atom(structures)
        e_forms = self._formation(structures, energies)
        self._time("energy", time.perf_counter() - t0)
        for node, energy, e_form in zip(nodes, energies, e_forms):
            node.data["energy_per_atom"] = float(energy)
            node.data["e_form_per_atom"] = float(e_form)
            if not energy_is_sane(energy, e_form if math.isfinite(e_form) else None):
                self._fail(node, "energy_sane", f"energy {float(energy):.2f} eV/atom, formation energy "
                           f"{float(e_form):.2f} eV/atom: outside the sane range")
                continue
            node.value = -float(e_form) + self._penalty(request, node) if math.isfinite(e_form) else -float(energy)

    def _formation(self, structures, energies):
        try:
            return formation_energies_per_atom(structures, self.model, energies_per_atom=energies, on_missing="nan")
        except NotImplementedError:  # a model without elemental references: the hull gives E_form
            return [math.nan] * len(structures)

    def _penalty(self, request: Request, node) -> float:
        soft = {h.name: h.weight for h in self.heuristics if not h.is_hard(request) and not getattr(h, "tiered", False)}
        return sum(soft[c["name"]] * (c["score"] - 1.0) for c in node.checks if c["name"] in soft)

    @staticmethod
    def _fail(node, name: str, reason: str) -> None:
        node.passed = False
        node.checks.append(HeuristicResult(name, False, 0.0, reason).as_dict())

    # -- stage 2: relax the best K -----------------------------------------------------------
    def relax(self, request: Request, tree, nodes: list) -> None:
        """Relax the best ``relax_top`` screened nodes of each generator; the relaxed structure replaces the input."""
        from genms_pmg.energy.relax import MAX_VOLUME_RATIO, relax_many

        if self.relax_top <= 0:
            return
        if not self.model.has_forces:
            if not self._warned_no_forces:
                warnings.warn(f"energy model {self.model.name!r} gives no forces, so structures are ranked "
                              "unrelaxed", GenMSWarning, stacklevel=2)
                self._warned_no_forces = True
            return
        tiered = self.tiered_names()
        ready = sorted((n for n in nodes if n.passed and n.value is not None), key=lambda n: rank_key(n, tiered))
        taken: dict[str, int] = {}
        chosen = []
        for node in ready:  # best first, at most relax_top per generator
            generator = node.data.get("generator", "")
            if taken.get(generator, 0) < self.relax_top:
                taken[generator] = taken.get(generator, 0) + 1
                chosen.append(node)
        if not chosen:
            return
        t0 = time.perf_counter()
        results = relax_many([tree.structures[n.node_id] for n in chosen], self.model, fmax=self.fmax,
                             steps=self.relax_steps, batched=self.batched)
        self._time("relax", time.perf_counter() - t0)
        hard = self.hard_names(request)
        for node, result in zip(chosen, results):
            node.data["relaxation"] = result.summary()
            node.data["unrelaxed_structure"] = tree.structures[node.node_id].as_dict()
            node.data["e_form_unrelaxed"] = node.data.get("e_form_per_atom")
            node.data["energy_per_atom_unrelaxed"] = node.data.get("energy_per_atom")
            structure, ratio = result.structure, result.volume_ratio
            if not math.isfinite(result.energy_per_atom):
                self._fail(node, "relaxation", f"the energy model could not evaluate the structure ({result.error})")
                continue
            distance = shortest_distance(structure)[0]
            if distance < MIN_RELAXED_DISTANCE:
                self._fail(node, "relaxation", f"fell apart in relaxation: atoms {distance:.2f} Å apart")
                continue
            if not 1 / MAX_VOLUME_RATIO <= ratio <= MAX_VOLUME_RATIO:
                self._fail(node, "relaxation", f"fell apart in relaxation: volume changed {ratio:.2f}x")
                continue
            tree.structures[node.node_id] = structure
            node.data["relaxed"] = True
            node.data["num_sites"] = len(structure)
            node.checks = [c for c in node.checks if c["name"] not in {h.name for h in self.heuristics}]
            node.checks = [h.evaluate(request, structure).as_dict() for h in self.heuristics] + node.checks
            energy = result.energy_per_atom
            e_form = float(self._formation([structure], [energy])[0])
            node.data["energy_per_atom"], node.data["e_form_per_atom"] = float(energy), e_form
            if not all(c["passed"] for c in node.checks if c["name"] in hard):
                node.passed = False
                continue
            if not energy_is_sane(energy, e_form if math.isfinite(e_form) else None):
                self._fail(node, "energy_sane", f"relaxed energy {energy:.2f} eV/atom is outside the sane range")
                continue
            node.value = (-e_form if math.isfinite(e_form) else -energy) + self._penalty(request, node)

    # -- stage 3: the hull, hard bounds and the final value ----------------------------------
    def judge(self, request: Request, tree, nodes: list) -> None:
        """E_above_hull for every screened node, then the hard checks and the R_lo value."""
        live = [n for n in nodes if n.passed and n.value is not None]
        if not live:
            return
        t0 = time.perf_counter()
        structures = [tree.structures[n.node_id] for n in live]
        corrected = self.model.corrected_energy_per_atom(structures, [n.data["energy_per_atom"] for n in live])
        for node, energy in zip(live, corrected):
            node.data["corrected_energy_per_atom"] = float(energy)  # what Candidate.to_entry() carries
        if self.hull:
            from genms_pmg.energy.hull import competing_phases

            phases = competing_phases(self.model)
            for node, structure, energy in zip(live, structures, corrected):
                try:
                    result = phases.evaluate(structure.composition, float(energy))
                except Exception as exc:  # noqa: BLE001 - no reference for an element: rank without a hull
                    node.data["e_above_hull"] = None
                    node.data["hull_notes"] = [f"no hull: {exc}".splitlines()[0]]
                    continue
                node.data["e_above_hull"] = result.e_above_hull
                node.data["decomposition"] = result.decomposition
                node.data["hull_notes"] = result.notes
                if not math.isfinite(node.data.get("e_form_per_atom", math.nan)):
                    node.data["e_form_per_atom"] = result.e_form_per_atom
        self._time("hull", time.perf_counter() - t0)
        bound = stability_bound(request, self.max_e_hull)
        for node in live:
            e_form = node.data.get("e_form_per_atom")
            e_hull = node.data.get("e_above_hull")
            elemental = len(tree.structures[node.node_id].composition.elements) == 1
            if e_form is not None and math.isfinite(e_form) and e_form > 0 and not elemental:
                # an element's polymorph is judged by the hull alone: its E_form is its energy above the reference
                self._fail(node, "formation_energy", f"formation energy {e_form:+.3f} eV/atom: above the elements")
                continue
            if e_hull is None or not math.isfinite(e_hull):
                continue  # keeps the formation-energy value; ranks behind structures with a hull
            passed = bound is None or e_hull <= bound + 1e-9
            reason = f"{e_hull:+.3f} eV/atom above the hull"
            if node.data.get("decomposition"):
                reason += " of " + " + ".join(node.data["decomposition"])
            if bound is not None:
                reason += f"; bound {bound:.3f}" + ("" if passed else " exceeded")
            node.checks.append(HeuristicResult("e_above_hull", passed, 1.0 if passed else 0.0, reason).as_dict())
            if not passed:
                node.passed = False
                continue
            node.value = -float(e_hull) + self._penalty(request, node)


__all__ = ["DEFAULT_MAX_E_HULL", "METASTABLE_MAX_E_HULL", "StructureScorer", "rank_key", "stability_bound"]
