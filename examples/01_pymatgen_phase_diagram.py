"""Generate candidates for a request, write CIFs, and put them on a phase diagram with the known phases.

    python examples/01_pymatgen_phase_diagram.py --out runs/spinel        # real settings, a few minutes
    python examples/01_pymatgen_phase_diagram.py --out /tmp/x --quick     # what CI runs (small search)

Everything is computed with one energy model (CHGNet), so candidates and known phases compare.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pymatgen.analysis.phase_diagram import PDPlotter, PhaseDiagram
from pymatgen.io.cif import CifWriter

from genms_pmg import LanguageStructureGenerator
from genms_pmg.energy.hull import competing_phases
from genms_pmg.plugins import create

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--request", default="a stable spinel oxide containing Mg")
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--quick", action="store_true", help="tiny search (CI)")
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)

# 1. The search: H formulae, L structures each, W expanded (the paper's Algorithm 1), one seed.
size = dict(formulas=3, structures=2, width=2) if args.quick else dict(formulas=10, structures=4, width=5)
generator = LanguageStructureGenerator(seed=0, progress=False, **size)
candidates = generator.generate(args.request, n=3)

# 2. CIFs, symmetrized, one per candidate.
for cand in candidates:
    CifWriter(cand.structure, symprec=0.1).write_file(args.out / f"rank-{cand.rank:02d}-{cand.formula}.cif")

# 3. The known phases of the best candidate's chemical system, with the same model, and the diagram.
best = candidates[0]
elements = sorted({el.symbol for el in best.structure.composition.elements})
known, notes = competing_phases(create("energy_models", "chgnet")).entries(elements)
diagram = PhaseDiagram(known + [c.to_entry() for c in candidates if c.formula == best.formula])

# 4. A table, and the diagram as a picture for ternaries and binaries.
print(f"{'rank':>4}  {'formula':<12} {'E_hull (eV/atom)':>17} {'E_form (eV/atom)':>17}  decomposes to")
for cand in candidates:
    s = cand.scores
    print(f"{cand.rank:>4}  {cand.formula:<12} {s.get('e_above_hull', float('nan')):>17.3f} "
          f"{s.get('e_form_per_atom', float('nan')):>17.3f}  {' + '.join(s.get('decomposition') or {})}")
# against the known phases alone (negative: below the known hull, a candidate new ground state)
_, e_hull = PhaseDiagram(known).get_decomp_and_e_above_hull(best.to_entry(), allow_negative=True)
print(f"known phases in {'-'.join(elements)}: {len(known)}; {best.formula} lies {e_hull:+.3f} eV/atom from their hull")
if len(elements) <= 3:
    figure = PDPlotter(diagram, show_unstable=0.05, backend="matplotlib").get_plot()
    figure.figure.savefig(args.out / "phase_diagram.png", dpi=120, bbox_inches="tight")
    print(f"wrote {args.out / 'phase_diagram.png'}")
