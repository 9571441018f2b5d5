"""The parsed form of a natural-language request.

:class:`Request` is what every proposer, heuristic and generator reads; it travels with the
results so a user can see how they were understood. ``genms_pmg.parsing.parse_request`` makes one
from a sentence; this module imports nothing from the parser, so the two never import each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from monty.json import MSONable


@dataclass
class Request(MSONable):
    """What the user asked for, in structured form.

    Attributes:
        text: the original sentence.
        family: key of a crystal-family card (``genms_pmg.knowledge.families``) or None.
        required_elements: element symbols that every formula must contain.
        required_any: groups of symbols of which every formula contains at least one ("Li or Na").
        excluded_elements: element symbols no formula may contain.
        anion_classes: e.g. ``["oxide"]``; see ``knowledge.families.ANION_CLASSES``.
        atom_ratio: integer ratio of element amounts, sorted ascending (``[1, 1, 2]``), or None.
        novel: True when formulae known in ``novelty_sources`` must be avoided.
        novelty_sources: which known-formula sources the sentence named ("mp", "icsd"); the Materials
            Project list counts as known whatever is named (``data.known.novelty_sources``).
        novel_against: the only indexes that count as known, set explicitly (CLI ``--novel-against``,
            API ``novel_against=``), or None.
        metallic: True for "metal"/"metallic", False for insulators, None when not said.
        band_gap: "metal", "semiconductor", "insulator" or "wide_gap" when the user said which.
        stable: the user asked for stable / low-energy materials.
        metastable: the user accepts metastable materials (a looser energy-above-hull bound).
        max_atoms: largest number of atoms per cell the user wants, or None.
        space_group: international space-group number (1-230) the structure must take, or None.
        crystal_system: "cubic", "hexagonal", ... the structure must belong to, or None.
        earth_abundant: avoid scarce elements (``knowledge.elements.SCARCE``).
        non_toxic: avoid toxic or radioactive elements (``knowledge.elements.TOXIC``).
        like: a formula or mineral the user compared the material to ("like K2NaAlF6"), or None.
        avoid_formulas: reduced formulae the user listed as already known or unwanted.
        site_elements: site -> the elements allowed on it ("Ti or Zr on the B site": ``{"B": ["Ti", "Zr"]}``).
            Keys are the family card's role letters ("A", "B", "B'", "X"; for a template such as
            Co2MnX the role of the matching card site); a coordination word the card cannot place,
            or said without a family, stays "tetrahedral", "octahedral" or "N-fold". Each entry is
            also a requirement: one element in ``required_elements``, several in ``required_any``.
        sheet: "mxene" when a two-dimensional MXene sheet is asked for (``structures.mxene``), else None.
        termination: surface termination of the sheet ("O", "F", "OH", "Cl"), "bare", or None (not said).
        ignored: words or phrases the parser did not use, so the user can rephrase.
    """

    text: str
    family: str | None = None
    required_elements: list[str] = field(default_factory=list)
    required_any: list[list[str]] = field(default_factory=list)
    excluded_elements: list[str] = field(default_factory=list)
    anion_classes: list[str] = field(default_factory=list)
    atom_ratio: list[int] | None = None
    novel: bool = False
    novelty_sources: list[str] = field(default_factory=list)
    novel_against: list[str] | None = None
    metallic: bool | None = None
    band_gap: str | None = None
    stable: bool = False
    metastable: bool = False
    max_atoms: int | None = None
    space_group: int | None = None
    crystal_system: str | None = None
    earth_abundant: bool = False
    non_toxic: bool = False
    like: str | None = None
    avoid_formulas: list[str] = field(default_factory=list)
    site_elements: dict[str, list[str]] = field(default_factory=dict)
    sheet: str | None = None
    termination: str | None = None
    ignored: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["@module"] = type(self).__module__
        d["@class"] = type(self).__name__
        return d

    def forbidden_elements(self) -> list[str]:
        """Every element no formula may contain: the excluded list plus the policy lists that
        'earth-abundant' and 'non-toxic' switch on (kept apart so the parse shows what was said)."""
        from genms_pmg.knowledge.elements import SCARCE, TOXIC

        out = list(self.excluded_elements)
        if self.non_toxic:
            out += [e for e in TOXIC if e not in self.required_elements]
        if self.earth_abundant:
            out += [e for e in SCARCE if e not in self.required_elements]
        return list(dict.fromkeys(out))

    @classmethod
    def from_dict(cls, d: dict) -> Request:
        return cls(**{k: v for k, v in d.items() if not k.startswith("@")})
