"""Which space groups to ask a conditional diffusion model for, learnt from the training split.

A space-group-conditional model answers "a structure of this composition in group G"; when nobody
names G, the sampler still has to choose. Drawing G from how often each group occurs among training
crystals of the same stoichiometry type (anonymised formula and cell size, e.g. ABC3 with 5 atoms)
factorises p(structure | composition) as p(G | stoichiometry) p(structure | G, composition): the
hierarchical sampling DiffCSP++ does with templates, but with nothing of a template except its
group label. Only counts are kept (no coordinates), so the prior ships inside the package.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from monty.json import MSONable
from pymatgen.core import Composition

__all__ = ["ANIONS", "DEFAULT_PRIOR", "SpaceGroupPrior"]

DEFAULT_PRIOR = Path(__file__).resolve().parent / "weights" / "space_group_prior.json.gz"


ANIONS = frozenset({"N", "O", "F", "S", "Cl", "Se", "Br", "Te", "I"})


def _keys(composition: Composition, natoms: int) -> list[str]:
    """Keys from the most to the least specific.

    The finest key writes the reduced formula in pymatgen's electronegativity order with letters for
    elements ("A1 B1 C3" for SrTiO3, "A3 B1" for Cu3Au but "A1 B3" for AlF3) and says whether an anion
    is present (rock salt NaCl and CsCl-type intermetallics share the type AB), then the cell size.
    Coarser: the same without the size; pymatgen's anonymised formula with the size, and alone; the
    size alone; everything.
    """
    reduced = Composition(composition).reduced_composition
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ordered = " ".join(f"{letters[i]}{amount:g}" for i, (_, amount) in enumerate(
        (el, reduced[el]) for el in sorted(reduced.elements, key=lambda el: (el.X if el.X == el.X else 0, el.symbol))))
    kind = "ionic" if any(el.symbol in ANIONS for el in reduced.elements) else "other"
    anonymous = reduced.anonymized_formula
    return [f"{ordered}|{kind}|{natoms}", f"{ordered}|{kind}", f"{anonymous}|{natoms}", anonymous, f"|{natoms}", "*"]


class SpaceGroupPrior(MSONable):
    """Space-group counts of training crystals, by anonymised formula and atom count.

    Args:
        counts: key (see :func:`_keys`) -> {space-group number: count}.
        source: where the counts came from (file name and split), for the record.
        min_support: a key is used only when at least this many training crystals share it;
            otherwise the next, coarser key is.
    """

    def __init__(self, counts: dict[str, dict[int, int]], *, source: str = "", min_support: int = 3) -> None:
        self.counts = {k: {int(g): int(c) for g, c in v.items()} for k, v in counts.items()}
        self.source, self.min_support = source, min_support

    @classmethod
    def from_cells(cls, cells: Iterable[tuple[Composition, int]], *, source: str = "",
                   min_support: int = 3) -> SpaceGroupPrior:
        """Count (cell composition, space-group number) pairs."""
        counts: dict[str, Counter] = defaultdict(Counter)
        for composition, group in cells:
            natoms = round(Composition(composition).num_atoms)
            for key in _keys(composition, natoms):
                counts[key][int(group)] += 1
        return cls({k: dict(v) for k, v in counts.items()}, source=source, min_support=min_support)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PRIOR) -> SpaceGroupPrior:
        with gzip.open(path, "rt") as fh:
            return cls.from_dict(json.load(fh))

    def save(self, path: str | Path) -> None:
        """Write gzipped JSON atomically (a temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode())  # same counts, same bytes
        tmp.replace(path)

    def as_dict(self) -> dict:
        return {"@module": type(self).__module__, "@class": type(self).__name__,
                "counts": {k: {str(g): c for g, c in v.items()} for k, v in self.counts.items()},
                "source": self.source, "min_support": self.min_support}

    @classmethod
    def from_dict(cls, d: dict) -> SpaceGroupPrior:
        return cls(d["counts"], source=d.get("source", ""), min_support=d.get("min_support", 3))

    def distribution(self, composition: Composition, natoms: int) -> tuple[str, dict[int, float]]:
        """The key used and the space-group probabilities for a cell of ``natoms`` atoms."""
        for key in _keys(composition, natoms):
            counts = self.counts.get(key, {})
            total = sum(counts.values())
            if total >= self.min_support or key == "*":
                return key, {g: c / total for g, c in counts.items()} if total else {}
        return "*", {}  # pragma: no cover - the loop always returns at "*"

    def allocate(self, composition: Composition, natoms: int, k: int, *,
                 unconditional_share: float = 0.25) -> list[int]:
        """Space groups for ``k`` samples, most probable first; 0 (no condition) for the reserved share.

        Counts follow the probabilities by largest remainder, so the likeliest groups are covered
        deterministically rather than by chance; the unconditional share keeps samples for groups
        the prior has never seen with this stoichiometry.
        """
        if k <= 0:
            return []
        _, probs = self.distribution(composition, natoms)
        n_free = round(k * unconditional_share) if probs else k
        n_cond = k - n_free
        ranked = sorted(probs.items(), key=lambda item: (-item[1], item[0]))
        quotas = [(g, p * n_cond) for g, p in ranked]
        counts = {g: int(q) for g, q in quotas}
        left = n_cond - sum(counts.values())
        for g, q in sorted(quotas, key=lambda item: (-round(item[1] - int(item[1]), 9), -item[1], item[0]))[:left]:
            counts[g] += 1
        groups = [g for g, _ in ranked for _ in range(counts[g])]
        return groups + [0] * n_free
