"""Relax pymatgen structures (positions and cell) with any :class:`EnergyModel` that has forces.

Why: generated candidates are rough guesses; only after a relaxation to the nearest local minimum
is their energy, and so their distance to the convex hull, what a chemist would act on. FIRE with
ASE's ``FrechetCellFilter`` does the work; :func:`relax_many` can run several relaxations in
lockstep so one batched force call (``EnergyModel.calculate_many``) serves all of them.
BLAS is pinned to one thread inside relaxation (threadpoolctl): ``FrechetCellFilter``'s 3x3
solves ran 14x slower with competing OpenBLAS threads on a busy 2-core machine.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from monty.json import MSONable
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from genms_pmg.energy.base import EnergyModel

log = logging.getLogger(__name__)

#: A relaxation that changes the volume by more than this factor (either way) is not trusted.
MAX_VOLUME_RATIO = 2.0


@dataclass
class RelaxationResult(MSONable):
    """One relaxation: the final structure and how it got there.

    Attributes:
        structure: the relaxed structure (the input when the model failed at once).
        energy_per_atom: final energy (eV/atom), NaN when the model could not evaluate it.
        initial_energy_per_atom: energy of the input (eV/atom).
        steps: FIRE steps taken.
        converged: max force (and cell force) below ``fmax`` within the step cap.
        volume_ratio: final volume / initial volume.
        error: why the relaxation stopped early, or None.
    """

    structure: Structure
    energy_per_atom: float
    initial_energy_per_atom: float
    steps: int
    converged: bool
    volume_ratio: float
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The numbers without the structure (for results.json)."""
        return {"energy_per_atom": self.energy_per_atom, "initial_energy_per_atom": self.initial_energy_per_atom,
                "steps": self.steps, "converged": self.converged, "volume_ratio": self.volume_ratio,
                "error": self.error}


class _BatchedForces:
    """Collects force requests from relaxations running in threads; one batched call answers all.

    Each relaxation thread posts its current structure and waits; when every still-running thread
    has posted, the last one evaluates the whole batch with ``model.calculate_many``.
    """

    def __init__(self, model: EnergyModel, active: int) -> None:
        self.model = model
        self.active = active
        self.cond = threading.Condition()
        self.pending: dict[int, Structure] = {}
        self.results: dict[int, object] = {}

    def request(self, index: int, structure: Structure) -> dict:
        with self.cond:
            self.pending[index] = structure
            self._maybe_run()
            while index not in self.results:
                self.cond.wait()
            out = self.results.pop(index)
        if isinstance(out, BaseException):
            raise out
        return out  # type: ignore[return-value]

    def done(self) -> None:
        with self.cond:
            self.active -= 1
            self._maybe_run()

    def _maybe_run(self) -> None:
        if not self.pending or len(self.pending) < self.active:
            return
        order = sorted(self.pending)
        structures = [self.pending[i] for i in order]
        try:
            many = getattr(self.model, "calculate_many", None)
            outs: list[object] = list(many(structures)) if many else [self.model.calculate(s) for s in structures]
        except Exception:  # noqa: BLE001 - isolate the structure that breaks the batch
            outs = []
            for s in structures:
                try:
                    outs.append(self.model.calculate(s))
                except Exception as exc:  # noqa: BLE001
                    outs.append(exc)
        for i, out in zip(order, outs):
            self.results[i] = out
        self.pending.clear()
        self.cond.notify_all()


class _ModelCalculator(Calculator):
    """ASE calculator over an :class:`EnergyModel` (or a batch collector); remembers the last good state."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, model: EnergyModel, batch: _BatchedForces | None = None, index: int = 0) -> None:
        super().__init__()
        self.model, self.batch, self.index = model, batch, index
        self.first: float | None = None
        self.last_good: tuple[Structure, float] | None = None

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:  # noqa: D102
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms.copy()
        atoms.calc = None
        structure = AseAtomsAdaptor.get_structure(atoms)
        result = self.batch.request(self.index, structure) if self.batch else self.model.calculate(structure)
        energy = float(result["energy"])
        self.results = {"energy": energy, "free_energy": energy,
                        "forces": np.asarray(result["forces"], dtype=float),
                        "stress": np.asarray(result["stress"], dtype=float)}
        if math.isfinite(energy):
            if self.first is None:
                self.first = energy / len(structure)
            self.last_good = (structure, energy / len(structure))


def _relax_one(structure: Structure, model: EnergyModel, *, fmax: float, steps: int, relax_cell: bool,
               batch: _BatchedForces | None = None, index: int = 0) -> RelaxationResult:
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info.clear()
    calc = _ModelCalculator(model, batch, index)
    atoms.calc = calc
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    optimizer = FIRE(target, logfile=None)
    error = None
    converged = False
    try:
        converged = bool(optimizer.run(fmax=fmax, steps=steps))
        final = calc.last_good[0] if calc.last_good else structure.copy()
        energy = calc.last_good[1] if calc.last_good else math.nan
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed relaxation must not stop a search
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if calc.last_good is None:
            final, energy = structure.copy(), math.nan
        else:
            final, energy = calc.last_good
    finally:
        if batch is not None:
            batch.done()
    if structure.site_properties:  # keep per-site labels the caller attached
        for key, values in structure.site_properties.items():
            final.add_site_property(key, values)
    initial = calc.first if calc.first is not None else math.nan
    return RelaxationResult(final, float(energy), float(initial), int(optimizer.nsteps), converged,
                            float(final.volume / structure.volume), error)


def relax_many(
    structures: Sequence[Structure],
    model: EnergyModel,
    *,
    fmax: float = 0.05,
    steps: int = 300,
    relax_cell: bool = True,
    batched: bool = False,
) -> list[RelaxationResult]:
    """Relax each structure with FIRE (+ ``FrechetCellFilter``) to ``fmax`` eV/Å, at most ``steps``.

    ``batched`` runs the relaxations in lockstep threads so each FIRE step costs one batched force
    call (``model.calculate_many``); results are the same up to float round-off.

    Raises:
        NotImplementedError: the model has no forces.
    """
    from threadpoolctl import threadpool_limits

    structures = list(structures)
    if not getattr(model, "has_forces", True):  # duck-typed models (benchmarks' counters) have forces
        raise NotImplementedError(f"energy model {model.name!r} predicts energies only, not forces or stress")
    with threadpool_limits(limits=1, user_api="blas"):
        if not batched or len(structures) < 2:
            return [_relax_one(s, model, fmax=fmax, steps=steps, relax_cell=relax_cell) for s in structures]
        batch = _BatchedForces(model, len(structures))
        out: list[RelaxationResult | None] = [None] * len(structures)

        def work(i: int) -> None:
            out[i] = _relax_one(structures[i], model, fmax=fmax, steps=steps, relax_cell=relax_cell,
                                batch=batch, index=i)

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(structures))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [r for r in out if r is not None]


def relax_structure(
    structure: Structure,
    model: EnergyModel,
    *,
    fmax: float = 0.05,
    steps: int = 300,
    relax_cell: bool = True,
) -> tuple[Structure, float]:
    """FIRE relaxation of one structure; returns ``(relaxed structure, energy per atom)``.

    If the model fails part way (e.g. the cell expands until an atom has no neighbours), the last
    structure it could evaluate is returned; if it cannot evaluate even the input, the input comes
    back with NaN.
    """
    result = relax_many([structure], model, fmax=fmax, steps=steps, relax_cell=relax_cell)[0]
    if result.error:
        log.warning("relaxation of %s stopped early: %s", structure.formula, result.error)
    if not math.isfinite(result.energy_per_atom):
        return structure.copy(), math.nan
    return result.structure, result.energy_per_atom
