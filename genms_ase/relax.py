"""Relaxation of positions and cell: FIRE on a FrechetCellFilter, as ASE users expect."""

from __future__ import annotations

from ase import Atoms
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE


def relax(atoms: Atoms, *, fmax: float = 0.05, steps: int = 300, calculator=None, logfile: str | None = None) -> Atoms:
    """Return a relaxed copy of ``atoms`` (the input is left untouched).

    Uses ``calculator``, else ``atoms.calc``, else a new :class:`GenMSCalculator`. The copy's
    ``info["genms_relax_converged"]`` says whether ``fmax`` was reached within ``steps``.
    """
    from genms_ase.calculator import GenMSCalculator

    relaxed = atoms.copy()
    relaxed.calc = calculator or atoms.calc or GenMSCalculator()
    optimizer = FIRE(FrechetCellFilter(relaxed), logfile=logfile)
    converged = optimizer.run(fmax=fmax, steps=steps)
    relaxed.info["genms_relax_converged"] = bool(converged)
    relaxed.info["genms_relax_steps"] = int(optimizer.nsteps)
    return relaxed
