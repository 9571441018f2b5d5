"""From a sentence to a bulk modulus with ASE: build -> GenMS calculator -> relaxation -> equation of state.

    python examples/02_ase_relax_eos.py --out runs/mgo
    python examples/02_ase_relax_eos.py --out /tmp/x --quick      # what CI runs

The calculator is the GenMS energy plugin (CHGNet by default), so any ASE workflow can use it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
from ase.eos import EquationOfState
from ase.units import GPa

from genms_ase import GenMSCalculator, build, relax

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--request", default="a rocksalt oxide containing Mg")
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--quick", action="store_true", help="tiny search (CI)")
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)

size = dict(formulas=2, structures=2, width=1) if args.quick else dict(formulas=6, structures=4, width=3)
atoms = build(args.request, progress=False, **size)            # best candidate as ase.Atoms
print(f"built {atoms.get_chemical_formula()} ({atoms.info['genms_formula']}), {len(atoms)} atoms")

atoms.calc = GenMSCalculator()
atoms = relax(atoms, fmax=0.05, steps=100 if args.quick else 300)   # FIRE + FrechetCellFilter
atoms.calc = GenMSCalculator()
print(f"relaxed: volume {atoms.get_volume() / len(atoms):.2f} A^3/atom, energy {atoms.get_potential_energy() / len(atoms):.3f} eV/atom")

# Equation of state: scale the relaxed cell isotropically by +-4 % in volume, fit Birch-Murnaghan.
cell = atoms.get_cell()
volumes, energies = [], []
for factor in np.linspace(0.96, 1.04, 5 if args.quick else 9):
    strained = atoms.copy()
    strained.set_cell(cell * factor ** (1 / 3), scale_atoms=True)
    strained.calc = GenMSCalculator()
    volumes.append(strained.get_volume())
    energies.append(strained.get_potential_energy())
eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
v0, e0, bulk = eos.fit()
print(f"bulk modulus {bulk / GPa:.0f} GPa (V0 {v0 / len(atoms):.2f} A^3/atom)")
eos.plot(args.out / "eos.png")
print(f"wrote {args.out / 'eos.png'}")
