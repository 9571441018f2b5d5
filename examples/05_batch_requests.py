"""Run a batch of requests from a text file and gather every candidate into one pandas table and a plot.

    python examples/05_batch_requests.py examples/requests.txt --out runs/batch
    python examples/05_batch_requests.py examples/requests.txt --out /tmp/b --quick   # CI

For hundreds of requests on many machines, use `genms campaign` (Dask) instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from genms_pmg import LanguageStructureGenerator
from genms_pmg.errors import UsageError

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("requests", type=Path)
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("-n", type=int, default=3)
parser.add_argument("--quick", action="store_true", help="tiny searches, first two requests (CI)")
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)

lines = [line.split("#")[0].strip() for line in args.requests.read_text().splitlines()]
requests = [line for line in lines if line][: 2 if args.quick else None]
size = dict(formulas=3, structures=2, width=2) if args.quick else dict(formulas=10, structures=4, width=5)
generator = LanguageStructureGenerator(seed=0, progress=False, **size)   # models load once, reused per request

rows = []
for text in requests:
    try:
        candidates = generator.generate(text, n=1 if args.quick else args.n)
    except UsageError as err:  # a request that cannot be answered: keep going, say why
        rows.append({"request": text, "error": str(err)})
        continue
    for cand in candidates:
        rows.append({"request": text, "rank": cand.rank, "formula": cand.formula,
                     "e_above_hull": cand.scores.get("e_above_hull"), "e_form": cand.scores.get("e_form_per_atom"),
                     "source": cand.provenance.get("generator")})

table = pd.DataFrame(rows)
table.to_csv(args.out / "candidates.csv", index=False)
print(table.to_string(index=False))

ok = table.dropna(subset=["e_above_hull"]) if "e_above_hull" in table else table.iloc[0:0]
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh([f"{r.formula} ({i})" for i, r in enumerate(ok.itertuples())], ok["e_above_hull"])
ax.set_xlabel("energy above hull (eV/atom, CHGNet)")
ax.set_title("candidates per request")
fig.tight_layout()
fig.savefig(args.out / "e_above_hull.png", dpi=120)
print(f"wrote {args.out / 'candidates.csv'} and {args.out / 'e_above_hull.png'}")
