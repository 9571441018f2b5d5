"""Does the ion-substitution term of the offline proposer help? Recall of real family members.

    python benchmarks/substitution_recall.py --k 100 --out benchmarks/results/substitution_recall

For each family, the "real members" are the reduced formulae of OQMD-ICSD structures whose
prototype label is one of the card's ``oqmd_prototypes``, minus the card's own examples (those seed
the substitution term, so they are left out of the score). The offline proposer's top-k candidates
(no novelty filter) are compared with that set for several substitution weights: a higher recall
means the ranking puts experimentally reported compositions first, the behaviour a chemistry-aware
proposer should have.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pymatgen.core import Composition

from genms_pmg.data.oqmd import ReferenceStructureDB
from genms_pmg.formulas.offline import OfflineFormulaProposer
from genms_pmg.knowledge.families import FAMILIES
from genms_pmg.request import Request

FAMILY_KEYS = ("perovskite", "double_perovskite", "spinel", "pyrochlore", "elpasolite", "garnet", "olivine",
               "ilmenite", "delafossite", "ruddlesden_popper", "chalcopyrite", "half_heusler", "heusler")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/substitution_recall"))
    args = ap.parse_args()
    db = ReferenceStructureDB.default()
    rows = []
    for key in FAMILY_KEYS:
        card = FAMILIES[key]
        examples = {Composition(e).reduced_formula for e in card.examples}
        members = {Composition(r.formula).reduced_formula for r in db.rows()
                   if r.proto_name in card.oqmd_prototypes} - examples
        if not members:
            continue
        row = {"family": key, "members": len(members)}
        for w in args.weights:
            proposer = OfflineFormulaProposer(substitution_weight=w)
            got = [p.formula for p in proposer.candidates(Request(text=key, family=key), limit=args.k)]
            row[f"w={w:g}"] = sum(f in members for f in got)
        rows.append(row)
    totals = {f"w={w:g}": sum(r[f"w={w:g}"] for r in rows) for w in args.weights}
    lines = ["# Ion-substitution term: real family members among the top-k offline candidates", "",
             f"Command: `python benchmarks/substitution_recall.py --k {args.k} --out {args.out}`", "",
             f"Members: OQMD-ICSD reduced formulae with one of the card's prototype labels, minus the card's examples. "
             f"Entries: how many of the top {args.k} candidates are such members.", "",
             "| family | members | " + " | ".join(f"substitution weight {w:g}" for w in args.weights) + " |",
             "|---|---|" + "---|" * len(args.weights)]
    for r in rows:
        lines.append(f"| {r['family']} | {r['members']} | " + " | ".join(str(r[f'w={w:g}']) for w in args.weights) + " |")
    lines.append("| **total** | " + str(sum(r["members"] for r in rows)) + " | "
                 + " | ".join(f"**{totals[f'w={w:g}']}**" for w in args.weights) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"k": args.k, "rows": rows, "totals": totals}, indent=1))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
