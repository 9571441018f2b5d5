"""One text per family card, the thing retrieval matches a request against.

A card's facts (name, aliases, formula template, site roles and coordination, space groups,
examples, minerals, notes) are written out as short sentences, because both the keyword index and
the sentence-embedding model read prose, not dataclasses. Each card gives a few chunks (what it
is called, how it is built, what is known about it) so a short request can match the one part it
paraphrases.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

from genms_pmg.knowledge.families import FAMILIES, FamilyCard, SiteSpec, get_family
from genms_pmg.knowledge.minerals import MINERALS

__all__ = ["SPACE_GROUPS", "card_chunks", "card_document", "card_keyword_text", "crystal_system", "documents_hash"]

#: Short Hermann-Mauguin symbols of the space groups the cards use (checked against pymatgen in
#: the tests; a table because pymatgen's symmetry data takes a second to load).
SPACE_GROUPS: dict[int, str] = {
    14: "P21/c", 62: "Pnma", 64: "Cmce", 74: "Imma", 82: "I-4", 87: "I4/m", 91: "P4122", 99: "P4mm",
    121: "I-42m", 122: "I-42d", 127: "P4/mbm", 136: "P42/mnm", 139: "I4/mmm", 140: "I4/mcm",
    141: "I41/amd", 148: "R-3", 160: "R3m", 164: "P-3m1", 166: "R-3m", 167: "R-3c", 186: "P63mc",
    194: "P63/mmc", 204: "Im-3", 205: "Pa-3", 216: "F-43m", 221: "Pm-3m", 225: "Fm-3m", 227: "Fd-3m",
    230: "Ia-3d",
}

_COORDINATION = {2: "linear two-fold", 3: "trigonal three-fold", 4: "tetrahedral four-fold",
                 6: "octahedral six-fold", 8: "cubic eight-fold", 9: "nine-fold",
                 12: "twelve-fold cuboctahedral", 16: "sixteen-fold Frank-Kasper"}


def crystal_system(number: int) -> str:
    """Crystal system of a space-group number (1-230)."""
    for top, name in ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
                      (167, "trigonal"), (194, "hexagonal"), (230, "cubic")):
        if number <= top:
            return name
    raise ValueError(f"space-group number {number} is outside 1-230")


def _charges(states: tuple[int, ...]) -> str:
    return "/".join(f"{s:+d}" for s in states)


def _site(site: SiteSpec, intermetallic: bool) -> str:
    kind = "metal" if site.kind == "metal" else site.kind
    words = [f"{site.role} site: {site.count} per formula unit, {kind}"]
    if site.oxidation_states and not intermetallic:
        words.append(f"oxidation state {_charges(site.oxidation_states)}")
    if site.coordination:
        words.append(f"{_COORDINATION.get(site.coordination, f'{site.coordination}-fold')} coordination")
    if site.elements and len(site.elements) <= 8:
        words.append("elements " + " ".join(site.elements))
    return ", ".join(words)


def _compact_template(card: FamilyCard) -> str:
    return "".join(f"{s.role}{s.count if s.count > 1 else ''}" for s in card.sites)


def _plain_name(card: FamilyCard) -> str:
    return card.name.split("(")[0].strip()


@cache
def card_chunks(key: str) -> tuple[str, ...]:
    """The card's text in three chunks: names, structure, knowledge (examples, minerals, notes)."""
    card = get_family(key)
    name = _plain_name(card)
    aliases = [a for a in card.aliases if a.lower() != name.lower()]
    names = f"{name} structure type, {_compact_template(card)}." + (
        f" Also called {', '.join(aliases)}." if aliases else "")
    groups = ", ".join(f"{SPACE_GROUPS.get(n, str(n))} ({n}, {crystal_system(n)})" for n in card.space_groups)
    kind = ("Intermetallic compound, metallic bonding" if card.intermetallic
            else "Ionic compound" + (f" ({', '.join(card.default_anions)} anions)" if card.default_anions else ""))
    structure = (f"{name} formula template {card.template}. {kind}. "
                 + "; ".join(_site(s, card.intermetallic) for s in card.sites)
                 + f". Space groups {groups}.")
    minerals = [f"{m} ({formula})" for m, (formula, fam) in MINERALS.items() if fam == key]
    knowledge = (f"{name} examples: {', '.join(card.examples)}."
                 + (f" Minerals: {', '.join(minerals)}." if minerals else "")
                 + (f" {card.notes[0].upper()}{card.notes[1:]}." if card.notes else ""))
    return tuple(re.sub(r"\s+", " ", c).strip() for c in (names, structure, knowledge))


def card_document(key: str) -> str:
    """The whole card as one text (chunks joined)."""
    return " ".join(card_chunks(key))


@cache
def card_keyword_text(key: str) -> str:
    """The card text plus the names of the elements in its examples, for the keyword index.

    Why: requests name compounds in words ("gallium arsenide", "nickel ferrite"); the element
    names let those words meet the examples (GaAs, NiFe2O4). Kept out of the embedded chunks,
    where a list of element names only blurs the sentence.
    """
    from pymatgen.core import Composition

    names: dict[str, None] = {}
    for ex in get_family(key).examples:
        for el in Composition(ex).elements:
            names[el.long_name.lower()] = None
    return card_document(key) + " Elements of the examples: " + ", ".join(names) + "."


def documents_hash() -> str:
    """sha256 of every card's chunks, to key cached embeddings (a card edit invalidates them)."""
    digest = hashlib.sha256()
    for key in FAMILIES:
        for chunk in card_chunks(key):
            digest.update(key.encode() + b"\0" + chunk.encode() + b"\0")
    return digest.hexdigest()
