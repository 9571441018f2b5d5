#!/usr/bin/env python
"""Build genms_pmg/structures/diffusion/weights/space_group_prior.json.gz from the training split.

Why: a space-group-conditional diffusion model needs a group to condition on when the request names
none; this counts the groups of the training crystals (spglib at symprec 0.1, the same labels the
model was trained with) by anonymised formula and cell size. Training split only: the validation
rows of the CSP benchmark must not inform it.

Usage:
    python scripts/build_space_group_prior.py ../shared/data/oqmd_icsd/train.csv.gz
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from genms_pmg.structures.diffusion.representation import load_structures_csv, space_group_number
from genms_pmg.structures.diffusion.space_group_prior import DEFAULT_PRIOR, SpaceGroupPrior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="training CSV(.gz) with a 'cif' column")
    parser.add_argument("--max-atoms", type=int, default=20, help="the training cells' size limit (default 20)")
    parser.add_argument("--out", type=Path, default=DEFAULT_PRIOR)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structures = load_structures_csv(args.train, max_atoms=args.max_atoms)
    cells = [(s.composition, space_group_number(s)) for s in tqdm(structures, desc="space groups")]
    prior = SpaceGroupPrior.from_cells(cells, source=f"{args.train.name}, {len(cells)} cells of at most "
                                                     f"{args.max_atoms} atoms, spglib symprec 0.1")
    prior.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(prior.counts)} keys, {len(cells)} cells)")


if __name__ == "__main__":
    main()
