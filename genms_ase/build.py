"""A builder in the spirit of ``ase.build.bulk``: a sentence in, ``ase.Atoms`` out."""

from __future__ import annotations

from typing import Any

from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor


def build(request: str, *, index: int = 0, seed: int = 0, **options: Any) -> Atoms:
    """Return the ``index``-th best GenMS candidate for ``request`` as ``ase.Atoms``.

    ``atoms.info`` carries the formula, scores and provenance. Extra keyword ``options`` go to
    :class:`genms_pmg.LanguageStructureGenerator` (``formulas``, ``structures``, ``width``,
    ``generators``, ``energy_model``, ``progress``).
    """
    from genms_pmg.generator import LanguageStructureGenerator

    if index < 0:
        raise ValueError(f"index must be 0 or more, got {index}")
    candidates = LanguageStructureGenerator(seed=seed, **options).generate(request, n=index + 1)
    if index >= len(candidates):
        raise IndexError(f"only {len(candidates)} candidate(s) were found for {request!r}; ask for a smaller index")
    cand = candidates[index]
    atoms = AseAtomsAdaptor.get_atoms(cand.structure)
    atoms.info.update({"genms_formula": cand.formula, "genms_rank": cand.rank,
                       "genms_scores": cand.scores, "genms_provenance": cand.provenance})
    return atoms
