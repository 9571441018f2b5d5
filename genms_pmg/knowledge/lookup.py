"""Structural evidence for retrieval: formulas and mineral names in a request, mapped to cards.

"Like K2NaAlF6" or "the structure of CaTiO3" name a compound, and what is known about that compound
says which family it is: a card example, a mineral of :data:`~genms_pmg.knowledge.minerals.MINERALS`,
or an OQMD-ICSD structure whose prototype label is one a card lists (the table shipped in
``genms_pmg/data/family_formulas.json.gz``, built by ``scripts/build_family_formulas.py``). A
prototype label shared by two cards (fluorite and antifluorite, CsCl and B2) goes only to the card
whose site chemistry the formula fits.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import product

from pymatgen.core import Composition, Element

from genms_pmg.knowledge.families import FAMILIES, FamilyCard, get_family
from genms_pmg.knowledge.minerals import MINERALS

__all__ = ["Evidence", "evidence_for", "fits_card", "formulas_in", "named_compounds", "prototype_table"]

#: Evidence strengths (0-1): a named example or mineral is the card's own fact; an OQMD structure
#: of the formula under the card's prototype is strong when it is the formula's lowest-energy
#: entry (its ground-state polymorph) and weaker when it is another polymorph.
EXAMPLE, MINERAL, OQMD_GROUND, OQMD_OTHER = 1.0, 1.0, 0.8, 0.5
#: A compound named in words whose elements are those of a card example ("gallium arsenide").
NAMED = 0.7
#: Factor for the broader of two cards that share a prototype and both fit (double perovskite
#: beside elpasolite for Cs2LiYCl6): the narrower card is the more informative answer.
_BROADER = 0.9
_CHI_SLACK = 0.5

_FORMULA = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z][a-z]?\d*(?:\.\d+)?|\((?:[A-Z][a-z]?\d*)+\)\d*){2,}"
                      r"(?![A-Za-z0-9])")


@dataclass(frozen=True)
class Evidence:
    """Why a card is relevant: strength in [0, 1] and a few words for ``RetrievedCard.how``."""

    strength: float
    how: str


def _reduced(formula: str) -> str | None:
    """pymatgen's reduced formula, or None for text that is no compound of two or more elements."""
    from genms_pmg.data.oqmd import normalize_formula

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = normalize_formula(formula)
            return out if len(Composition(out).elements) >= 2 else None
    except Exception:  # noqa: BLE001 - UsageError for non-formulas, assorted pymatgen errors on odd text
        return None


def formulas_in(text: str) -> list[tuple[str, str]]:
    """(as written, reduced formula) for each compound formula in ``text``, in order, no repeats."""
    found: dict[str, tuple[str, str]] = {}
    for m in _FORMULA.finditer(text):
        reduced = _reduced(m.group(0))
        if reduced and reduced not in found:
            found[reduced] = (m.group(0), reduced)
    return list(found.values())


#: Anion words of compound names ("gallium arsenide") and the element they name.
_IDE = {"oxide": "O", "sulfide": "S", "sulphide": "S", "selenide": "Se", "telluride": "Te", "nitride": "N",
        "phosphide": "P", "arsenide": "As", "antimonide": "Sb", "bismuthide": "Bi", "fluoride": "F",
        "chloride": "Cl", "bromide": "Br", "iodide": "I", "carbide": "C", "silicide": "Si", "boride": "B",
        "hydride": "H", "germanide": "Ge", "stannide": "Sn"}
#: Oxyanion words ("strontium titanate") and the element besides oxygen they name.
_ATE = {"titanate": "Ti", "ferrite": "Fe", "ferrate": "Fe", "aluminate": "Al", "zirconate": "Zr",
        "hafnate": "Hf", "niobate": "Nb", "tantalate": "Ta", "silicate": "Si", "germanate": "Ge",
        "stannate": "Sn", "tungstate": "W", "molybdate": "Mo", "chromate": "Cr", "chromite": "Cr",
        "manganate": "Mn", "manganite": "Mn", "cobaltate": "Co", "cobaltite": "Co", "nickelate": "Ni",
        "cuprate": "Cu", "vanadate": "V", "ruthenate": "Ru", "iridate": "Ir", "gallate": "Ga",
        "indate": "In", "scandate": "Sc", "plumbate": "Pb", "bismuthate": "Bi", "antimonate": "Sb"}
_MULTIPLIER = {"mono": 1, "di": 2, "tri": 3, "tetra": 4, "penta": 5, "hexa": 6}


@lru_cache(maxsize=1)
def _element_names() -> dict[str, str]:
    names = {Element.from_Z(z).long_name.lower(): Element.from_Z(z).symbol for z in range(1, 104)}
    names.update({"aluminium": "Al", "caesium": "Cs", "sulphur": "S"})
    return names


@lru_cache(maxsize=1)
def _compound_name() -> re.Pattern:
    element = "|".join(sorted(_element_names(), key=len, reverse=True))
    ide = "|".join(sorted(_IDE, key=len, reverse=True))
    ate = "|".join(sorted(_ATE, key=len, reverse=True))
    mult = "|".join(_MULTIPLIER)
    return re.compile(rf"\b(?P<els>(?:(?:{element})(?:\s+|-))+)(?:(?P<mult>{mult})?(?P<ide>{ide})|(?P<ate>{ate}))s?\b",
                      re.IGNORECASE)


def named_compounds(text: str) -> list[tuple[str, str | None, frozenset[str]]]:
    """Compounds named in words: (as written, reduced formula when the name fixes it, elements).

    "tungsten disulfide" gives WS2; "gallium arsenide" gives GaAs; "lithium cobalt oxide" gives
    only the elements {Li, Co, O}, since the name does not say how many of each.
    """
    out = []
    for m in _compound_name().finditer(text):
        symbols = [_element_names()[w.lower()] for w in re.split(r"[\s-]+", m["els"].strip()) if w]
        if m["ate"]:
            elements = frozenset([*symbols, _ATE[m["ate"].lower()], "O"])
            formula = None
        else:
            anion = _IDE[m["ide"].lower()]
            elements = frozenset([*symbols, anion])
            formula = None
            if len(symbols) == 1 and anion not in symbols and m["mult"]:  # "zinc sulfide" says no count
                formula = _reduced(f"{symbols[0]}{anion}{_MULTIPLIER[m['mult'].lower()]}")
        if len(elements) >= 2:
            out.append((m.group(0).strip(), formula, elements))
    return out


@lru_cache(maxsize=1)
def prototype_table() -> dict[str, dict[str, int]]:
    """Reduced formula -> {OQMD prototype label: 1 if its ground-state polymorph else 0}."""
    raw = resources.files("genms_pmg.data").joinpath("family_formulas.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))["formulas"]


@lru_cache(maxsize=1)
def _examples() -> dict[str, list[tuple[str, str]]]:
    """Reduced formula of every card example -> (card key, the example as the card writes it)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for card in FAMILIES.values():
        for ex in card.examples:
            reduced = _reduced(ex)
            if reduced:
                out.setdefault(reduced, []).append((card.key, ex))
    return out


@lru_cache(maxsize=1)
def _examples_by_elements() -> dict[frozenset[str], list[tuple[str, str]]]:
    out: dict[frozenset[str], list[tuple[str, str]]] = {}
    for reduced, entries in _examples().items():
        out.setdefault(frozenset(Composition(reduced).chemical_system.split("-")), []).extend(entries)
    return out


@lru_cache(maxsize=4096)
def fits_card(formula: str, key: str) -> bool:
    """Whether ``formula`` can be laid out on the card's sites: counts, kinds, elements, charge.

    Sites may share an element (Fe3O4 on both spinel cation sites); anions must be more
    electronegative than cations; intermetallic sites without an element list take metals only.
    """
    card: FamilyCard = get_family(key)
    amounts = Composition(formula).reduced_composition.get_el_amt_dict()
    elements = list(amounts)
    sites = card.sites
    if len(elements) > len(sites):
        return False
    for labels in product(range(len(elements)), repeat=len(sites)):
        if len(set(labels)) != len(elements):
            continue
        sums = [0] * len(elements)
        for site, label in zip(sites, labels):
            sums[label] += site.count
        scale = sums[0] / amounts[elements[0]]
        if any(abs(s - scale * amounts[e]) > 1e-6 for s, e in zip(sums, elements)):
            continue
        if all(_site_ok(site, elements[label], card.intermetallic) for site, label in zip(sites, labels)) \
                and _chemistry_ok(card, [elements[label] for label in labels]):
            return True
    return False


def _site_ok(site, element: str, intermetallic: bool) -> bool:
    if site.elements is not None:
        return element in site.elements
    return Element(element).is_metal if intermetallic else True


def _chemistry_ok(card: FamilyCard, chosen: list[str]) -> bool:
    """Charge balance with the card's site oxidation states; each ion of a sign it can take; anions
    not clearly less electronegative than cations (0.5 slack: Pb sits above Te on Pauling's scale)."""
    if card.intermetallic:
        return True
    cations = [e for s, e in zip(card.sites, chosen) if s.kind == "cation"]
    anions = [e for s, e in zip(card.sites, chosen) if s.kind == "anion"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # noble gases have no electronegativity (NaN)
        chi = {e: Element(e).X for e in set(chosen)}
    if any(chi[a] < chi[c] - _CHI_SLACK for a in anions for c in cations if chi[a] == chi[a] and chi[c] == chi[c]):
        return False
    options = []
    for site, el in zip(card.sites, chosen):
        element = Element(el)
        allowed = list(site.oxidation_states)
        if site.elements is None:  # a listed element is the card's own claim (As-1 in CoAs3, Pd+ in PdCoO2)
            sign = 1 if site.kind == "cation" else -1
            if not any(q * sign > 0 for q in element.common_oxidation_states):
                return False
            known = {*element.oxidation_states, *element.icsd_oxidation_states, *element.common_oxidation_states}
            allowed = [q for q in allowed if q in known]
        options.append([q * site.count for q in allowed])
    return any(sum(c) == 0 for c in product(*options))


def _specificity(card: FamilyCard) -> float:
    """How narrow the card's chemistry is (lower: narrower), to rank cards that share a prototype."""
    return sum(math.log(max(len(s.oxidation_states), 1)) + math.log(len(s.elements) if s.elements else 40)
               for s in card.sites)


def evidence_for(text: str) -> dict[str, Evidence]:
    """Card key -> the strongest formula or mineral evidence that ``text`` points at it."""
    best: dict[str, Evidence] = {}

    def offer(key: str, ev: Evidence) -> None:
        if key not in best or ev.strength > best[key].strength:
            best[key] = ev

    from genms_pmg.data.forget import is_forgotten

    lowered = text.lower()
    for name, (formula, key) in MINERALS.items():
        if is_forgotten(formula):
            continue
        if re.search(r"(?<![a-z])" + re.escape(name) + r"(?![a-z])", lowered):
            offer(key, Evidence(MINERAL, f"{name} is {formula}"))
    mentioned = formulas_in(text)
    for written, formula, elements in named_compounds(text):
        if formula is not None:
            mentioned.append((written, formula))
            continue
        for key, example in _examples_by_elements().get(elements, ()):
            if is_forgotten(example):
                continue
            offer(key, Evidence(NAMED, f"{written} matches example {example}"))
    table = prototype_table()
    for written, reduced in mentioned:
        if is_forgotten(reduced):
            continue  # a hidden formula is nobody's example and has no known structure
        for key, _ in _examples().get(reduced, ()):
            offer(key, Evidence(EXAMPLE, f"{written} is a card example"))
        for proto, ground in table.get(reduced, {}).items():
            cards = [c for c in FAMILIES.values() if proto in c.oqmd_prototypes and fits_card(reduced, c.key)]
            narrowest = min((_specificity(c) for c in cards), default=0.0)
            for card in cards:
                strength = (OQMD_GROUND if ground else OQMD_OTHER) * (1.0 if _specificity(card) == narrowest
                                                                      else _BROADER)
                which = "ground state" if ground else "a polymorph"
                offer(card.key, Evidence(strength, f"{written} has an OQMD-ICSD {proto} structure ({which})"))
    return best
