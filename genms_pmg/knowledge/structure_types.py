"""Structure-type names a chemist types, resolved to prototype labels of the bundled data.

The vocabulary lives in ``data/structure_type_names.csv`` (name, archetype compound, space group, kind,
source): mineral names, Strukturbericht symbols, nicknames (kagome, 1111 pnictide, Chevrel phase) and
archetype phrasings. A name resolves through its archetype: the OQMD-ICSD label of that formula in that
space group (:func:`~genms_pmg.knowledge.prototypes.labels_of_formula`). A name with several rows is a
group (kagome: CoSn, Fe3Sn2, Mn3Sn, ...); rows with one formula template are variants of one card, rows
with different templates are picked by the request's elements (:func:`choose_family`). A formula
followed by "-type" needs no row at all (:func:`resolve_formula`).

Where the resolved labels are exactly a hand-written card's, the hand-written card answers (it carries
richer site chemistry); otherwise the derived card of :mod:`~genms_pmg.knowledge.prototypes` does.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from genms_pmg.errors import UsageError
from genms_pmg.knowledge.families import FAMILIES
from genms_pmg.knowledge.prototypes import derived_key, labels_of_formula, prototype_records

__all__ = ["NameRow", "StructureType", "choose_family", "close_names", "names_table", "normal_name",
           "resolve_formula", "resolve_name", "structure_type_names", "variant_space_group"]

#: Names whose structures are checked for a kagome net (``structures.kagome``).
KAGOME_NAMES = frozenset({"kagome", "kagome metal", "shandite"})


@dataclass(frozen=True)
class NameRow:
    """One row of the names table."""

    name: str
    archetype: str
    space_group: int | None
    kind: str
    source: str
    prototype: str = ""


@dataclass(frozen=True)
class StructureType:
    """A resolved structure-type name.

    Attributes:
        name: the name as the table has it (normalised).
        groups: OQMD labels per formula template (each group: variants of one card), table order.
        archetypes: the archetype formula of each group.
        unresolved: archetypes of the name that the bundled data lacks.
        sources: where the rows came from.
    """

    name: str
    groups: tuple[tuple[str, ...], ...]
    archetypes: tuple[str, ...]
    unresolved: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def kagome(self) -> bool:
        return self.name in KAGOME_NAMES


def normal_name(text: str) -> str:
    """Lower case, single spaces, no '-type' / ' structure' tail: how names are compared."""
    norm = " ".join(re.split(r"[\s-]+", text.strip().lower()))
    norm = re.sub(r"\s+(?:type|structure|structured|phase|like)$", "", norm)
    return norm.replace(" = ", "=").replace("n = ", "n=")


@lru_cache(maxsize=1)
def names_table() -> tuple[NameRow, ...]:
    """Every row of ``data/structure_type_names.csv``."""
    text = resources.files("genms_pmg.knowledge").joinpath("data/structure_type_names.csv").read_text()
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        sg = r["space_group"].strip()
        rows.append(NameRow(normal_name(r["name"]), r["archetype"].strip(), int(sg) if sg else None,
                            r["kind"].strip(), r["source"].strip(), (r.get("prototype") or "").strip()))
    return tuple(rows)


@lru_cache(maxsize=1)
def _rows_by_name() -> dict[str, tuple[NameRow, ...]]:
    out: dict[str, list[NameRow]] = {}
    for row in names_table():
        out.setdefault(row.name, []).append(row)
        if row.kind == "strukturbericht" and re.fullmatch(r"[a-z]\d+_\w+", row.name):  # 'C11_b' is also 'C11b'
            out.setdefault(row.name.replace("_", ""), []).append(row)  # ('B_a' stays: 'Ba' is barium)
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=1)
def _hand_aliases() -> frozenset[str]:
    names = set()
    for card in FAMILIES.values():
        for n in (card.key.replace("_", " "), card.name.split("(")[0], *card.aliases):
            names.add(normal_name(n))
    return frozenset(names)


def display_name(name: str) -> str:
    """How a table name is written ('A15', 'D0_3', 'kagome metal'): Strukturbericht symbols capitalised."""
    rows = _rows_by_name().get(normal_name(name))
    if rows and rows[0].kind == "strukturbericht":
        return name[:1].upper() + name[1:]
    return name


def structure_type_names() -> tuple[str, ...]:
    """Names the parser reads as structure types (hand-written card aliases excluded: those cards answer)."""
    return tuple(n for n in _rows_by_name() if n not in _hand_aliases())


def _formula(text: str) -> str | None:
    from genms_pmg.data.oqmd import normalize_formula

    try:
        return normalize_formula(text)
    except UsageError:
        return None


@lru_cache(maxsize=1024)
def resolve_name(name: str) -> StructureType | None:
    """The structure type a table name stands for, or None when the table lacks it."""
    rows = _rows_by_name().get(normal_name(name))
    if not rows:
        return None
    records = prototype_records()
    groups: dict[str, list[str]] = {}
    archetypes: dict[str, str] = {}
    unresolved = []
    for row in rows:
        formula = _formula(row.archetype)
        labels = labels_of_formula(formula, space_group=row.space_group) if formula else ()
        if not labels and row.prototype:  # the archetype is missing, other members of its prototype may not be
            labels = _labels_of_prototype(row.prototype)
        if not labels:
            unresolved.append(row.archetype)
            continue
        label = labels[0]
        anonymous = records[label].anonymous
        groups.setdefault(anonymous, [])
        archetypes.setdefault(anonymous, formula)
        if label not in groups[anonymous]:
            groups[anonymous].append(label)
    return StructureType(rows[0].name, tuple(tuple(v) for v in groups.values()), tuple(archetypes.values()),
                         tuple(unresolved), tuple(dict.fromkeys(r.source for r in rows)))


def _labels_of_prototype(aflow_label: str) -> tuple[str, ...]:
    """OQMD labels with the site pattern of an AFLOW prototype label, most members first."""
    from genms_pmg.knowledge.prototypes import labels_by_site_pattern
    from genms_pmg.structures.templates import prototype_key

    return labels_by_site_pattern().get(prototype_key(aflow_label), ())


def resolve_formula(formula: str, *, space_group: int | None = None) -> StructureType | None:
    """The structure type of a compound in the data ('CaWO4-type'): its most stable polymorph's label."""
    reduced = _formula(formula)
    labels = labels_of_formula(reduced, space_group=space_group) if reduced else ()
    if not labels:
        return None
    return StructureType(f"{reduced}-type", ((labels[0],),), (reduced,), (), ("bundled OQMD-ICSD data",))


def _fits(members, required: set[str]) -> bool:
    return any(required <= set(m.roles) for m in members)


def choose_family(stype: StructureType, *, required: list[str] = (), ratio: list[int] | None = None,
                  space_group: int | None = None) -> str:
    """The family key for ``stype`` given what else the request says: the group (formula template)
    whose members hold the required elements, else one whose site count can hold them, in table order;
    variants narrowed to the asked-for space group. A hand-written card answers where it holds the chosen
    labels (its variant is then picked by space group, :func:`variant_space_group`)."""
    records = prototype_records()
    if not stype.groups:
        raise UsageError(f"the structure type {stype.name!r} has no archetype in the bundled data "
                         f"({', '.join(stype.unresolved)} missing); give a CIF of one with --like FILE.cif")
    req = set(required)
    candidates = list(stype.groups)
    if space_group:
        narrowed = [tuple(lab for lab in g if records[lab].space_group == space_group) for g in candidates]
        if any(narrowed):
            candidates = [g for g in narrowed if g]
    if ratio:
        from genms_pmg.parsing import _ratio_fits, _reduced

        fitting = [g for g in candidates if _ratio_fits(_reduced(list(ratio)), list(records[g[0]].counts))]
        candidates = fitting or candidates
    if req:
        holding = [g for g in candidates if _fits([m for lab in g for m in records[lab].members], req)]
        roomy = [g for g in candidates if len(records[g[0]].counts) >= len(req)]
        candidates = holding or roomy or candidates
    chosen = candidates[0]
    for card in FAMILIES.values():
        if card.oqmd_prototypes and set(chosen) <= set(card.oqmd_prototypes):
            groups = {records[lab].space_group for lab in chosen}
            others = {records[lab].space_group for lab in card.oqmd_prototypes
                      if lab not in chosen and lab in records}
            if groups & others:
                break  # the space group cannot pick this variant inside the card (C36 beside C14): its own card
            return card.key
    return derived_key(stype.name, chosen)


def variant_space_group(stype: StructureType, key: str) -> int | None:
    """The one space group of the variant a name picks inside a hand-written card ('C15 Laves': 227), or None
    when the name means the whole card or its variants span several groups."""
    card = FAMILIES.get(key)
    if card is None:
        return None
    records = prototype_records()
    labels = {lab for g in stype.groups for lab in g if lab in card.oqmd_prototypes}
    if not labels or labels == set(card.oqmd_prototypes):
        return None
    groups = {records[lab].space_group for lab in labels}
    return groups.pop() if len(groups) == 1 else None


def close_names(word: str, n: int = 4) -> list[str]:
    """Known structure-type names (table and hand-written cards) closest in spelling to ``word``."""
    pool = sorted(set(_rows_by_name()) | _hand_aliases())
    return difflib.get_close_matches(normal_name(word), pool, n=n, cutoff=0.6)
