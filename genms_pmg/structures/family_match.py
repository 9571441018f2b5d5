"""R_lo: does a structure belong to the requested crystal family?

References per family are the AFLOW prototypes named on its card (pymatgen's library) and a few
OQMD-ICSD structures with the card's prototype labels (the card's examples first, then lowest energy
above hull first). A
structure matches when pymatgen's ``StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)`` fits it
to any reference anonymously: the paper's match-rate protocol (appendix A.1).
"""

from __future__ import annotations

from functools import lru_cache

from pymatgen.analysis.prototypes import AFLOW_PROTOTYPE_LIBRARY
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure

from genms_pmg.formulas.base import HeuristicResult
from genms_pmg.knowledge.families import find_family, get_family
from genms_pmg.request import Request
from genms_pmg.structures.base import StructureHeuristic

OQMD_REFERENCES_PER_LABEL = 3


def family_matcher() -> StructureMatcher:
    """The paper's matcher settings (appendix A.1)."""
    return StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)


def family_references(family: str) -> tuple[tuple[str, Structure], ...]:
    """(name, structure) references of ``family``: card AFLOW prototypes, then OQMD exemplars
    (never a forgotten formula's structure, see ``data.forget``)."""
    from genms_pmg.data.forget import forgotten

    return _family_references(family, forgotten())


@lru_cache(maxsize=64)
def _family_references(family: str, hidden: frozenset[str]) -> tuple[tuple[str, Structure], ...]:
    card = get_family(family)
    refs: list[tuple[str, Structure]] = []
    for entry in AFLOW_PROTOTYPE_LIBRARY:
        if entry["tags"]["aflow"] in card.aflow_prototypes:
            refs.append((f"aflow:{entry['tags']['aflow']}", entry["snl"].structure))
    if card.oqmd_prototypes:
        from genms_pmg.data.oqmd import ReferenceStructureDB

        db = ReferenceStructureDB.default()
        examples = {Composition(f).reduced_formula for f in card.examples}
        for label in card.oqmd_prototypes:
            anonymous = label.split("_")[0]
            # the card's own examples first: an anonymous label is shared across families (delafossite
            # CuFeO2 and alpha-NaFeO2 LiCoO2 are both ABC2_1_a_b_c_166, as are SrCN2 and CaCN2)
            rows = sorted((r for r in db.candidates(anonymous) if r.proto_name == label),
                          key=lambda r: (Composition(r.formula).reduced_formula not in examples, r.stability, r.id))
            for row in rows[:OQMD_REFERENCES_PER_LABEL]:
                refs.append((f"oqmd-icsd:{row.name}", db.structure(row.id)))
    return tuple(refs)


def match_family(structure: Structure, family: str) -> str | None:
    """Name of the first family reference ``structure`` matches anonymously, or None."""
    matcher = family_matcher()
    for name, reference in family_references(family):
        if len(structure.composition.elements) != len(reference.composition.elements):
            continue
        if matcher.fit_anonymous(structure, reference):
            return name
    return None


class FamilyMatch(StructureHeuristic):
    """Tiered: structures of the requested family rank ahead of every other polymorph.

    A soft energy penalty (1 eV/atom until issue 10) still let a low-energy non-member beat the
    real garnet; the user asked for the family, so a match is a tier, not a trade-off.
    """

    name = "family_match"
    hard = False
    weight = 0.0
    tiered = True

    def is_hard(self, request: Request) -> bool:
        """Hard when the request names a structure type of the data (issue 20): a scheelite request
        returns scheelites or says it found fewer; a tier for the hand-written families, as before."""
        from genms_pmg.knowledge.prototypes import is_derived_key

        return is_derived_key(request.family)

    def evaluate(self, request: Request, structure: Structure) -> HeuristicResult:
        if find_family(request.family) is None:
            return HeuristicResult(self.name, True, 1.0, "no family requested")
        if not family_references(request.family):
            return HeuristicResult(self.name, True, 1.0, f"no reference structures for {request.family}")
        matched = match_family(structure, request.family)
        if matched is None:
            return HeuristicResult(self.name, not self.is_hard(request), 0.0,
                                   f"does not match the {request.family} references")
        return HeuristicResult(self.name, True, 1.0, f"matches {request.family} reference {matched}")
