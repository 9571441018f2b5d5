"""MXenes: two-dimensional M(n+1)X(n)T(x) sheets cut from the MAX phases of the bundled data.

A MAX phase M(n+1)AX(n) (P6_3/mmc) stacks M(n+1)X(n) slabs between A layers. Etching removes A; what
is left is a sheet, bare or terminated by O, F or OH on both faces. :func:`sheet_from_max` cuts one slab
out of a MAX structure of the data, adds terminations over the fcc hollow (above the M atom of the next
M layer down) and at least ``vacuum`` Å of empty space along c. :func:`relax_sheet` relaxes atoms and
the in-plane cell only (ASE ``FrechetCellFilter`` with mask xx, yy, xy), so the vacuum never collapses.

Energy above the hull against bulk phases means little for a free-standing sheet. What is reported,
per atom of the sheet, is the energy of the sheet against its parent MAX phase minus the A element
(and, for terminated sheets, minus the terminating elements at their model references):

    dE = [E(sheet) - (Z_s/Z_m) E(MAX) + Z_s mu_A + N_T mu_T] / N(sheet),

with every energy from one model; lower means the sheet is less costly to make from its parent.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Element, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from genms_pmg.errors import UsageError

__all__ = ["MXENE_VACUUM", "MXeneSheet", "max_parents", "relax_sheet", "sheet_from_max", "sheet_energy_vs_parent"]

#: Vacuum added along c (Å); the issue asks for at least 15.
MXENE_VACUUM = 15.0
#: Typical M-T bond lengths (Å) used to place terminations over the hollow site.
_BOND = {"O": 2.0, "F": 2.15, "OH": 2.15, "Cl": 2.5}
#: A-site elements of MAX phases.
_A_ELEMENTS = frozenset({"Al", "Si", "P", "S", "Ga", "Ge", "As", "Cd", "In", "Sn", "Tl", "Pb", "Zn", "Au", "Ir"})
#: OQMD labels of the 211, 312 and 413 MAX phases.
MAX_LABELS = ("ABC2_2_a_c_f_194", "AB2C3_2_b_f_af_194", "AB3C4_2_c_af_ef_194")


@dataclass
class MXeneSheet:
    """A sheet and where it came from."""

    structure: Structure
    formula: str
    parent_formula: str
    parent_row_id: int
    parent_name: str
    termination: str | None
    a_element: str
    formula_units: int


def max_parents(m_elements: set[str], x_elements: set[str]) -> list[tuple[str, int, str, str]]:
    """(formula, row id, OQMD name, A element) of MAX phases in the data whose M and X are allowed,
    most stable first within each n (211, 312, 413)."""
    from genms_pmg.knowledge.prototypes import prototype_records

    records = prototype_records()
    out = []
    for label in MAX_LABELS:
        for m in records[label].members:
            comp = Counter(m.roles)
            elements = set(m.roles)
            a = [e for e in elements if e in _A_ELEMENTS]
            x = [e for e in elements if e in ("C", "N")]
            ms = [e for e in elements if e not in a and e not in x]
            if len(a) != 1 or len(x) != 1 or len(ms) != 1 or len(comp) != 3:
                continue
            if (m_elements and ms[0] not in m_elements) or (x_elements and x[0] not in x_elements):
                continue
            out.append((m.formula, m.row_id, m.name, a[0]))
    return out


def sheet_from_max(structure: Structure, a_element: str, *, termination: str | None = None,
                   vacuum: float = MXENE_VACUUM) -> Structure:
    """One M(n+1)X(n) slab of a MAX phase, A removed, optionally terminated on both faces, in a cell with
    ``vacuum`` Å of empty space along c (c perpendicular to the sheet)."""
    if termination not in (None, "O", "F", "OH", "Cl"):
        raise UsageError(f"termination {termination!r}: choose O, F, OH, Cl or none")
    conv = SpacegroupAnalyzer(structure, symprec=0.1).get_conventional_standard_structure()
    lattice = conv.lattice
    if abs(lattice.alpha - 90) > 1 or abs(lattice.beta - 90) > 1 or abs(lattice.gamma - 120) > 1:
        raise UsageError(f"{structure.composition.reduced_formula} is not a hexagonal MAX cell")
    a_z = sorted({round(s.frac_coords[2] % 1.0, 4) for s in conv if s.specie.symbol == a_element})
    if len(a_z) < 2:
        raise UsageError(f"{structure.composition.reduced_formula}: fewer than two {a_element} layers per cell")
    low, high = a_z[0], a_z[1]
    slab = [s for s in conv if s.specie.symbol != a_element and low < s.frac_coords[2] % 1.0 < high]
    if not slab:
        raise UsageError(f"{structure.composition.reduced_formula}: no M-X slab between the {a_element} layers")
    c = lattice.c
    z = np.array([(s.frac_coords[2] % 1.0) * c for s in slab])
    species = [s.specie.symbol for s in slab]
    xy = [s.frac_coords[:2] for s in slab]
    zmin, zmax = z.min(), z.max()
    extra_species, extra_xy, extra_z = [], [], []
    if termination:
        m_layers = sorted({round(zz, 2) for zz, sp in zip(z, species) if sp not in ("C", "N")})
        a_len = lattice.a
        bond = _BOND[termination]
        height = math.sqrt(max(bond ** 2 - (a_len / math.sqrt(3)) ** 2, 0.8 ** 2))
        anion = "O" if termination == "OH" else termination
        for surface, below in ((m_layers[-1], m_layers[-2]), (m_layers[0], m_layers[1])):
            outward = 1.0 if surface > below else -1.0
            hollow = [xy_ for xy_, zz, sp in zip(xy, z, species) if sp not in ("C", "N") and abs(zz - below) < 0.05]
            for h in hollow:  # one terminating atom per surface M atom, over the fcc hollow
                extra_species.append(anion)
                extra_xy.append(h)
                extra_z.append(surface + outward * height)
                if termination == "OH":
                    extra_species.append("H")
                    extra_xy.append(h)
                    extra_z.append(surface + outward * (height + 0.97))
    all_z = np.concatenate([z, np.array(extra_z)]) if extra_z else z
    zmin, zmax = all_z.min(), all_z.max()
    new_c = (zmax - zmin) + vacuum
    new_lattice = Lattice.from_parameters(lattice.a, lattice.b, new_c, 90, 90, 120)
    coords = [[p[0], p[1], (zz - zmin + vacuum / 2) / new_c] for p, zz in zip(xy + extra_xy, list(all_z))]
    sheet = Structure(new_lattice, species + extra_species, coords)
    return sheet.get_sorted_structure()


def vacuum_width(structure: Structure) -> float:
    """Empty space along c (Å): c minus the thickness of the atoms."""
    z = np.sort([(s.frac_coords[2] % 1.0) * structure.lattice.c for s in structure])
    gaps = np.diff(np.concatenate([z, [z[0] + structure.lattice.c]]))
    return float(gaps.max())


def relax_sheet(structure: Structure, model, *, fmax: float = 0.05, steps: int = 200) -> tuple[Structure, float, int]:
    """(relaxed sheet, energy in eV, steps): FIRE on atoms and the in-plane cell, c fixed."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor
    from threadpoolctl import threadpool_limits

    from genms_ase.calculator import GenMSCalculator

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = GenMSCalculator(model)
    target = FrechetCellFilter(atoms, mask=[True, True, False, False, False, True])
    with threadpool_limits(1):
        opt = FIRE(target, logfile=None)
        opt.run(fmax=fmax, steps=steps)
    energy = float(atoms.get_potential_energy())
    if not math.isfinite(energy):
        raise RuntimeError(f"the energy model returned {energy} for the relaxed sheet")
    return AseAtomsAdaptor.get_structure(atoms), energy, int(opt.nsteps)


def sheet_energy_vs_parent(sheet: Structure, sheet_energy: float, parent: Structure, parent_energy: float,
                           a_element: str, references: dict[str, float]) -> float:
    """dE per atom of the sheet (see the module text): sheet against parent MAX minus A and terminations."""
    sheet_counts = sheet.composition.get_el_amt_dict()
    parent_counts = parent.composition.get_el_amt_dict()
    m = next(e for e in parent_counts if e not in (a_element, "C", "N"))
    scale = sheet_counts[m] / parent_counts[m]  # parent formula units per sheet cell
    a_removed = parent_counts[a_element] * scale
    terminators = {e: n for e, n in sheet_counts.items() if e not in parent_counts}
    missing = [e for e in [a_element, *terminators] if e not in references]
    if missing:
        raise UsageError(f"no model reference energy for {', '.join(missing)}")
    delta = sheet_energy - scale * parent_energy + a_removed * references[a_element] \
        - sum(n * references[e] for e, n in terminators.items())
    return delta / sheet.num_sites


def is_transition_metal(symbol: str) -> bool:
    return Element(symbol).is_transition_metal
