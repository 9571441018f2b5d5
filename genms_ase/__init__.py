"""GenMS for ASE users: ``build`` a crystal from a sentence, an energy-model ``Calculator``, ``relax``.

    from genms_ase import build, GenMSCalculator, relax
    atoms = build("a cubic perovskite fluoride")
    atoms.calc = GenMSCalculator()
    relaxed = relax(atoms, fmax=0.05, steps=300)
"""

from __future__ import annotations

from genms_ase.build import build
from genms_ase.calculator import GenMSCalculator
from genms_ase.relax import relax

__all__ = ["GenMSCalculator", "build", "relax"]
