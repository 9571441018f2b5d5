"""Rule-based, deterministic parsing of a sentence into a :class:`~genms_pmg.request.Request`.

Rules rather than a language model so the same sentence always gives the same request, offline,
and so every word is accounted for: what no rule used lands in ``Request.ignored``. Each rule masks
the characters it used, so one phrase is never read twice ("halide double perovskite" gives the
anion class halide and the family double perovskite, not the family twice).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache, reduce
from importlib import resources
from itertools import permutations, product
from math import gcd

from pymatgen.core.periodic_table import Element

from genms_pmg.errors import UsageError
from genms_pmg.knowledge.elements import ELEMENT_GROUPS
from genms_pmg.knowledge.families import ANION_CLASSES, FAMILIES, FamilyCard, SiteSpec, find_family, get_family
from genms_pmg.knowledge.structure_types import (
    StructureType,
    choose_family,
    close_names,
    resolve_formula,
    resolve_name,
    structure_type_names,
    variant_space_group,
)
from genms_pmg.request import Request

_NOBLE_GASES = ("He", "Ne", "Ar", "Kr", "Xe", "Rn")
#: From rutherfordium (Z=104) on, elements exist a few atoms at a time: no crystal to propose.
_FIRST_SUPERHEAVY = 104
#: Elements that are anions in the families' sense; never placed on a cation or metal site.
_ANION_ELEMENTS = frozenset(e for els, _ in ANION_CLASSES.values() for e in els)
_NOT_CATIONS = frozenset({"O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "H", *_NOBLE_GASES})
#: Element -> its own anion class ("O" -> "oxide"), for an anion site holding one element.
_CLASS_OF = {els[0]: name for name, (els, _) in ANION_CLASSES.items() if len(els) == 1}
#: The words a chemist may extend without touching code: knowledge/data/vocabulary.json.
_VOCABULARY = json.loads(resources.files("genms_pmg.knowledge").joinpath("data/vocabulary.json").read_text())


def _table(name: str) -> dict:
    return {k: v for k, v in _VOCABULARY[name].items() if not k.startswith("_")}


#: Capitalised words that look like symbols but are placeholders or English, never "unknown elements".
_NOT_SYMBOLS = set(_VOCABULARY["not_symbols"]["words"])
#: Symbols that are English words: never read bare at the start of a sentence ("In perovskites, ...").
_ENGLISH_SYMBOLS = set(_VOCABULARY["english_symbols"]["capitalised"])
_ENGLISH_LOWER = set(_VOCABULARY["english_symbols"]["lower"])
_STOPWORDS = set(_VOCABULARY["stopwords"]["words"])
_NUMBER_WORDS: dict[str, int] = _table("number_words")
_CRYSTAL_SYSTEMS: dict[str, str] = _table("crystal_systems")
_EXC_CUES: list[str] = _VOCABULARY["element_cues"]["exclude"]
_REQ_CUES: list[str] = _VOCABULARY["element_cues"]["require"]
#: Words for ELEMENT_GROUPS keys; where two start at one position the first listed wins.
_GROUP_WORDS: tuple[tuple[str, str], ...] = tuple((w, g) for w, g in _VOCABULARY["element_group_words"]["patterns"])
_ANION_ALIASES: dict[str, str] = _table("anion_aliases")
_PREFIX_ANIONS: dict[str, str] = _table("anion_prefixes")
_EXAMPLE = "e.g. 'a stable spinel oxide containing Mg'"

_SOURCE_RE = r"(?P<src>materials\s+project|(?-i:MP)|icsd|inorganic\s+crystal\s+structure\s+database)"
_SOURCE_PHRASE = re.compile(
    r"(?:\bnot|n't|\bnever|\babsent|\bmissing|\bnew|\bnovel|\bunknown|\bunreported|\boutside|\bbeyond)"
    r"(?:\s+(?:yet|already|listed|found|present|known|reported|included|contained|been|be|is|are|"
    r"seen|available|recorded|documented|anywhere|previously))*"
    r"\s+(?:(?:in|on|from|to|by|for|of)\s+)?(?:(?:both|either)\s+)?(?:the\s+)?" + _SOURCE_RE + r"\b"
    r"(?:\s*(?:,|or|and|nor)\s*(?:the\s+)?" + _SOURCE_RE.replace("src", "src2") + r"\b)?", re.I)
_NOVEL = re.compile(
    r"\b(?:new|novel|unknown|undiscovered|hypothetical|unreported|unseen|unexplored|"
    r"not\s+(?:yet\s+)?(?:known|reported|discovered|synthesi[sz]ed)|"
    r"never\s+(?:been\s+)?(?:reported|synthesi[sz]ed|made|seen)|previously\s+unknown)\b", re.I)
_RATIO_WORD = r"(?:(?:atom(?:ic)?|element(?:al)?|composition(?:al)?|stoichiometric)\s+)?(?:ratio|stoichiometry)"
_RATIO = re.compile(
    r"(?:\b" + _RATIO_WORD + r"\s*(?:of\s+|=\s*|:\s*)?)?(?<![\d:])(?P<r>\d+(?:\s*:\s*\d+)+)(?![\d:])"
    r"(?:\s*" + _RATIO_WORD + r"\b)?", re.I)
_CELL = (r"(?:\s+(?:per|in\s+the|in\s+a|in\s+each|in\s+its)\s+(?:(?:(?:unit|primitive|simulation)\s+)?cells?"
         r"|formula(?:\s+units?)?|f\.?u\.?)(?![A-Za-z]))?")
#: Number words a chemist writes for small atom counts.
_NUMBER = r"(?:\d+|" + "|".join(_NUMBER_WORDS) + r")"
_MAX_ATOMS = re.compile(
    r"(?:(?P<le>\bat\s+most|\bup\s+to|\bno\s+more\s+than|\bnot\s+more\s+than|\bmax(?:imum)?(?:\s+of)?|<=|≤)"
    r"|(?P<lt>\bfewer\s+than|\bless\s+than|\bunder|\bbelow|<))\s*(?P<n>" + _NUMBER + r")\s*atoms?\b" + _CELL +
    r"|\b(?P<n2>" + _NUMBER + r")\s*atoms?\s+or\s+(?:fewer|less)\b" + _CELL, re.I)
_STABLE = re.compile(
    r"\b(?:(?:thermodynamically|thermally|energetically|dynamically|chemically)\s+)?stable\b|\bstability\b"
    r"|\blow(?:est)?[-\s]energy\b|\bon\s+the\s+(?:convex\s+)?hull\b|\bground[-\s]state\b", re.I)
_METASTABLE = re.compile(r"\bmeta-?stable\b|\bmetastability\b", re.I)
#: British spellings of anion-class words.
_ANION_WORDS = "|".join(sorted([*ANION_CLASSES, *_ANION_ALIASES], key=len, reverse=True))
# 'nickel arsenide' names the NiAs family, not an arsenide of nickel
# 'oxynitride' is an oxide and a nitride; 'thio', 'seleno', 'telluro' name the anion of a family or an -ate
_ANION = re.compile(r"(?!(?<=nickel\s)arsenide)\b(?:(?P<pre>mono|di|tri|tetra|poly|per|sub|oxy)-?)?(?P<a>"
                    + _ANION_WORDS + r")s?\b", re.I)
_PREFIX = re.compile(r"(?<![A-Za-z0-9])(?P<p>" + "|".join(_PREFIX_ANIONS) + r")-?(?=[A-Za-z])", re.I)



#: Oxyanion words beyond knowledge.lookup._ATE and oxides by trivial name: the element besides oxygen.
_ATE_EXTRA = {**_table("ate_words"), **_table("oxide_names")}
_LIKE_BEFORE = re.compile(r"\b(?:like|similar\s+to|analogous\s+to|akin\s+to)\s+(?:the\s+)?(?:mineral\s+)?$", re.I)
_NONMETAL = re.compile(r"\b(?:insulat(?:or|ors|ing)|semiconduct(?:or|ors|ing)|non-?metallic|band[-\s]?gap|"
                       r"gapped|wide[-\s]gap)\b", re.I)
_METAL = re.compile(r"\b(?:half[-\s]?)?(?P<w>metallic|metals?|conduct(?:or|ors|ing|ive))\b", re.I)
_METAL_BEFORE = re.compile(r"(?:without|no|any|other|excluding|containing|with|transition|alkali|alkaline|earth|noble|precious|post-transition|heavy|base|rare|"
                           r"group|main-group|[345]d|[dfsp]-block|ionic|ion|proton|thermal|thermally|heat|"
                           r"lanthan(?:ide|oid)s?|group[-\s]?(?:2|ii|two)|p\s+block|post\s+transition|"
                           r"superionic)[\s-]+$", re.I)
_METAL_AFTER = re.compile(r"[\s-]+(?:(?:" + _ANION_WORDS + r")s?|ions?|cations?|atoms?|sites?|elements?|"
                          r"cent(?:er|re)s?|organic|salts?|complex(?:es)?|free|dopants?)\b", re.I)
#: A formula template such as ABO3, A2BB'O6, Co2MnX or LiMX2; _template_tokens decides.
_TEMPLATE = re.compile(r"(?<![A-Za-z0-9'])(?:[A-Z][a-z]?'?\d*){2,}(?![A-Za-z0-9']|\.\d)")
_TOKEN = re.compile(r"([A-Z][a-z]?)('?)(\d*)")
#: Placeholder letters; B, C and Y are elements too, so they count as placeholders only beside one of these.
_PLACEHOLDERS, _MAYBE_PLACEHOLDERS = frozenset("AMTXZ"), frozenset("BCY")
#: Templates of two bare placeholders; others (TM, ZT, AM) are usually abbreviations.
_SHORT_TEMPLATES = {"AB", "AX", "MX", "BX"}
_CRYSTAL_SYSTEM = re.compile(r"\b(?P<w>" + "|".join(_CRYSTAL_SYSTEMS) + r")\b", re.I)
_SG_WORD = r"(?:space[-\s]?group|spacegroup|symmetry|sg)"
_SG_NUMBER = re.compile(r"\b" + _SG_WORD + r"\s*(?:no\.?|number|#|=|:)?\s*(?P<n>\d{1,3})\b(?![.:]\d)", re.I)
#: A Hermann-Mauguin symbol: lattice letter then axes; validated by pymatgen afterwards.
_SG_SYMBOL = re.compile(r"(?<![A-Za-z0-9_/-])(?P<s>[PIFCABR](?:-?(?:[1-6](?:_?[1-5])?|[mnabcde])(?:/[mnabcde])?){1,4})"
                        r"(?![A-Za-z0-9_/])")
_SG_CUE = re.compile(r"\b" + _SG_WORD + r"\s*$", re.I)
_GAP_WORDS = re.compile(r"\b(?P<wide>wide[-\s]?(?:band[-\s]?)?gap|large[-\s](?:band[-\s]?)?gap|ultra[-\s]?wide[-\s]?(?:band[-\s]?)?gap)"
                        r"|\b(?P<semi>semiconduct(?:or|ors|ing))|\b(?P<ins>insulat(?:or|ors|ing))\b", re.I)
_EARTH_ABUNDANT = re.compile(r"\b(?:(?:avoid(?:ing|s)?|without|no|free\s+of|excluding|neither|nor)\s+(?:any\s+)?"
                             r"(?:scarce|critical)(?:\s+(?:elements?|metals?))?|"
                             r"earth[-\s]abundant|abundant\s+elements?|made\s+of\s+abundant|"
                             r"(?:only\s+)?(?:cheap|inexpensive|low[-\s]cost)\s+elements?)\b", re.I)
_NON_TOXIC = re.compile(r"\b(?:(?:avoid(?:ing|s)?|without|no|free\s+of|excluding|neither|nor)\s+(?:any\s+)?"
                        r"(?:scarce\s+(?:or|nor|and)\s+)?toxic(?:\s+(?:or|and)\s+scarce)?(?:\s+(?:elements?|metals?))?|"
                        r"non[-\s]?toxic|nontoxic|less[-\s]toxic|low[-\s]toxicity|benign|"
                        r"environmentally[-\s](?:friendly|benign)|eco[-\s]?friendly)\b", re.I)
_FORMULA = r"(?:[A-Z][a-z]?\d*){2,}"
_LIKE = re.compile(r"(?i:\blike|\bsimilar\s+to|\banalogous\s+to|\bakin\s+to|\bisostructural\s+(?:to|with)|"
                   r"\bresembling|\ban\s+analog(?:ue)?\s+of|\bsame\s+structure\s+as|\bstructure\s+(?:type\s+)?of|"
                   r"\bstructure\s+type)\s+(?i:the\s+|a\s+)?"
                   r"(?:(?P<mineral>mineral|compound)\s+)?(?P<x>[A-Za-z][A-Za-z0-9]*)"
                   r"|(?<![A-Za-z0-9])(?P<y>" + _FORMULA + r")[-\s](?i:type|structured|like|structure|analog(?:ue)?s?)\b")
_AVOID_FORMULAS = re.compile(r"\b(?:other\s+than|except(?:\s+for)?|excluding|besides|apart\s+from|not|unlike|"
                             r"instead\s+of|beyond)\s+(?P<list>" + _FORMULA + r"(?:\s*(?:,|\band\b|\bor\b|\bnor\b)\s*"
                             + _FORMULA + r")*)", re.I)


def _alternation(words: list[str]) -> str:
    return "|".join(r"\s+".join(map(re.escape, w.split())) for w in sorted(words, key=len, reverse=True))


_CUE = re.compile(r"(?P<exc>(?:\bnot|n't)\s+(?:contain(?:ing|s)?|includ(?:e|es|ing)|with|hav(?:e|ing)|us(?:e|es|ing)|need(?:s|ing)?)\b"
                  r"|\bwithout\s+using\b|\b(?:"
                  + _alternation(_EXC_CUES) + r")\b)|\b(?P<req>" + _alternation(_REQ_CUES) + r")\b", re.I)
_FILLER = re.compile(r"\s*(?:(?:only|both|either|neither|also|some|the|a|an|elements?|at\s+least(?:\s+one)?(?:\s+of)?"
                     r"|one\s+of|any(?:\s+of)?)\s+)*", re.I)
_WORD_AT = re.compile(r"[A-Za-z]+(?:\d*\+)?(?![A-Za-z0-9])")
_SEP = re.compile(r"\s*(?:,\s*(?:(?:and|or|nor)\s+)?|[/+&]\s*|\s(?:and|or|nor|plus|as\s+well\s+as)\s+)", re.I)
_GROUP_TAIL = r"(?:[-\s]+(?:metals?|elements?|ions?|cations?|atoms?))?"
_GROUP_ANY = r"(?:" + "|".join(w for w, _ in _GROUP_WORDS) + r")" + _GROUP_TAIL
_GROUP = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(f"(?P<g{i}>{w})" for i, (w, _) in enumerate(_GROUP_WORDS))
                    + r")" + _GROUP_TAIL + r"(?![A-Za-z0-9])", re.I)
_GROUP_BEFORE = re.compile(r"(?<![A-Za-z0-9])" + _GROUP_ANY + r"(?P<gap>\s*(?:[-/,]|\band\b)?\s*)$", re.I)
_GROUP_ATTACHED = re.compile(r"(?<![A-Za-z0-9])(?P<grp>" + _GROUP_ANY + r")[-\s]+"
                             r"(?P<kind>based|containing|bearing|rich|doped|substituted|free)\b"
                             r"(?!\s+(?:of|from)\b)", re.I)
_ATTACHED = re.compile(r"(?<![A-Za-z0-9])(?P<els>[A-Za-z]+(?:[-/][A-Za-z]+)*?)-"
                       r"(?P<kind>based|containing|bearing|rich|doped|substituted|free)\b", re.I)
_SPACE_FREE = re.compile(r"\b(?P<els>[A-Za-z]+)\s+free\b(?!\s+(?:of|from)\b)", re.I)
#: Nouns an element name may qualify like a family word ('a tin compound', 'a sodium battery cathode').
_NOUNS = re.compile(r"\b(?:compounds?|materials?|phases?|alloys?|salts?|crystals?|solids?|cathodes?|anodes?|"
                    r"electrolytes?|batter(?:y|ies)|conductors?|magnets?|catalysts?|semiconductors?|insulators?|"
                    r"absorbers?|intermetallics?)\b", re.I)
_ROMAN_BEFORE = re.compile(r"\b[IVX]+-$")
_BACK = re.compile(r"(?P<w>[A-Za-z]+)(?P<gap>\s*(?:[-/,]|\band\b)?\s*)$")


@lru_cache(maxsize=1)
def _elements() -> tuple[frozenset[str], dict[str, str]]:
    """Element symbols (case-sensitive) and lower-case names -> symbol, from pymatgen."""
    symbols, names = set(), {}
    for z in range(1, 119):
        el = Element.from_Z(z)
        symbols.add(el.symbol)
        names[el.long_name.lower()] = el.symbol
    names.update({"aluminium": "Al", "caesium": "Cs", "sulphur": "S"})
    return frozenset(symbols), names


def _element(word: str) -> str | None:
    """Symbol for an exactly-capitalised symbol or a name in any case, else None."""
    symbols, names = _elements()
    word = word.rstrip("+0123456789")
    return word if word in symbols else names.get(word.lower())


def _fail(message: str) -> UsageError:
    """A UsageError whose message is guaranteed to be one line."""
    return UsageError(" ".join(message.split()))


def _check_symbol_like(word: str, lower: bool = False) -> None:
    """Refuse a word clearly meant as a symbol that is none ('containing Xx') or is mis-capitalised ('mg')."""
    if re.fullmatch(r"[A-Z][a-z]?", word) and word not in _NOT_SYMBOLS and _element(word) is None:
        raise _fail(f"unknown element {word!r} in the request; use a symbol such as Mg or a name such as magnesium")
    if lower and len(word) == 2 and word.islower() and word not in _ENGLISH_LOWER and _element(word.title()):
        raise _fail(f"element symbols are case-sensitive: write {word.title()!r} instead of {word!r}")


def _at_sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?;:"


class _Scan:
    """The text plus a mask of characters some rule has already used."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.used = bytearray(len(text))

    def take(self, start: int, end: int) -> None:
        self.used[start:end] = b"\x01" * (end - start)

    def is_free(self, start: int, end: int) -> bool:
        return not any(self.used[start:end])

    def masked(self) -> str:
        return "".join(" " if u else c for c, u in zip(self.text, self.used))

    def find(self, pattern: re.Pattern) -> list[re.Match]:
        """Matches on the not-yet-used text, marked as used."""
        found = list(pattern.finditer(self.masked()))
        for m in found:
            self.take(*m.span())
        return found


@lru_cache(maxsize=1)
def _family_lookup() -> tuple[re.Pattern, dict[str, str]]:
    """One alternation of every card's key, name and aliases: leftmost, then longest, wins."""
    names: dict[str, str] = {}
    for card in FAMILIES.values():
        for n in (card.key.replace("_", " "), card.name.split("(")[0], *card.aliases):
            names.setdefault(" ".join(re.split(r"[\s-]+", n.strip().lower())), card.key)
    alts = [r"[\s-]+".join(map(re.escape, n.split())) for n in sorted(names, key=len, reverse=True)]
    return re.compile(r"(?<![A-Za-z0-9'])(?:" + "|".join(alts) + r")(?:e?s)?(?![A-Za-z0-9'])", re.I), names


def _family_key(matched: str, names: dict[str, str]) -> str:
    norm = " ".join(re.split(r"[\s-]+", matched.lower()))
    for cand in (norm, norm[:-1], norm[:-2]):
        if cand in names:
            return names[cand]
    raise AssertionError(matched)  # pragma: no cover - the pattern only matches known names


#: One thing a list names, at its position in the text: an element symbol or a group's symbols.
_Item = tuple[int, "str | tuple[str, ...]"]


def _group_of(m: re.Match) -> tuple[str, ...]:
    """Symbols of the ELEMENT_GROUPS entry a _GROUP match names."""
    return ELEMENT_GROUPS[next(key for i, (_, key) in enumerate(_GROUP_WORDS) if m[f"g{i}"] is not None)]


def _flat(items: list[_Item]) -> list[str]:
    return _unique([s for _, v in items for s in ((v,) if isinstance(v, str) else v)])


def _read_list(scan: _Scan, pos: int) -> tuple[list[_Item], int, int]:
    """Read 'Mg, Al and a rare earth' from pos: (items, start of the first one, end of the last one).

    Stops at text another rule already used ('with Fm-3m symmetry' is not fermium)."""
    text = scan.text
    p = _FILLER.match(text, pos).end()
    first, found, end = p, [], pos
    while True:
        g = _GROUP.match(text, p)
        w = None if g else _WORD_AT.match(text, p)
        if not scan.is_free(pos, (g or w).end() if (g or w) else p):
            break
        if g:
            found.append((p, _group_of(g)))
        elif w and (sym := _element(w.group(0))):
            found.append((p, sym))
        else:
            if w:
                _check_symbol_like(w.group(0), lower=text[w.end():w.end() + 1] in ("", " ", ",", "."))
            break
        end = p = (g or w).end()
        s = _SEP.match(text, p)
        if not s:
            break
        p = _FILLER.match(text, s.end()).end()  # 'Li or an alkaline earth'
    return found, first, end


# -- lists inside phrases (sites, substitutions) -------------------------------------------------
@lru_cache(maxsize=1)
def _list_pattern() -> tuple[str, re.Pattern]:
    """A regex for 'Ti or Zr', 'barium', 'a rare earth' (no named groups, to embed) and one for an item."""
    symbols, names = _elements()
    sym = "|".join(sorted(symbols, key=len, reverse=True))
    name = "|".join(sorted(names, key=len, reverse=True))
    item = (r"(?:(?i:an?|the|one|any)\s+)?(?:(?i:" + _GROUP_ANY + r")|(?i:" + name + r")|(?:" + sym + r")(?:\d*\+)?)"
            r"(?![A-Za-z0-9'])(?!\s*=|[-\s]+(?i:sites?)\b)")
    sep = r"(?:\s*,\s*(?:(?:and|or)\s+)?|\s*/\s*|\s+(?:and|or)\s+)"
    return item + r"(?:" + sep + item + r")*", re.compile(item)


def _list_items(scan: _Scan, start: int, end: int) -> list[_Item] | None:
    """The items of a list matched by _list_pattern, or None when one is no element or group."""
    text, out = scan.text, []
    for m in _list_pattern()[1].finditer(text, start, end):
        word = re.sub(r"^(?:an?|the|one|any)\s+", "", m.group(0), flags=re.I)
        p = m.end() - len(word)
        g = _GROUP.fullmatch(word)
        value = _group_of(g) if g else _element(word)
        if value is None or (p == start and word in _ENGLISH_SYMBOLS and _at_sentence_start(text, p)):
            return None
        out.append((p, value))
    return out or None


#: Intermetallic '-ide' words name an element, not an anion class ('a disilicide of tungsten', 'a monoboride').
_IDE_ELEMENTS = _table("ide_elements")
_IDE = re.compile(r"\b(?:mono|di|tri|tetra|penta|hexa|hepta|octa)?-?(?P<w>" + "|".join(_IDE_ELEMENTS) + r")s?\b", re.I)


def _read_ide_words(scan: _Scan, required: list) -> None:
    for m in scan.find(_IDE):
        required.append((m.start("w"), _IDE_ELEMENTS[m["w"].lower()]))


#: A chemical system such as Pb-Mo-S or Ni-In: every part an element symbol.
_CHEMSYS = re.compile(r"(?<![A-Za-z0-9_-])(?P<s>[A-Z][a-z]?(?:-[A-Z][a-z]?)+)(?![A-Za-z0-9_'-])")
_MXENE = re.compile(r"\b(?:two[-\s]dimensional\s+|2d\s+)?mxenes?(?:\s+sheets?)?\b", re.I)
_TERMINATIONS = _table("terminations")
_TERMINATION = re.compile(r"\b(?P<t>O|F|OH|Cl|oxygen|oxo|fluorine|fluoro|hydroxyl|hydroxide|chlorine)[-\s]+terminat(?:ed|ion)\b"
                          r"|\bterminat(?:ed|ions?)\s+(?:with|by)\s+(?P<t2>O|F|OH|Cl|oxygen|fluorine|hydroxyl|chlorine)\b"
                          r"|(?P<bare>\bbare\b|\bun-?terminated\b)", re.I)


def _read_chemical_systems(scan: _Scan, required: list) -> None:
    """'Pb-Mo-S', 'the Ni-In system': each element required."""
    for m in list(_CHEMSYS.finditer(scan.masked())):
        parts = m["s"].split("-")
        symbols = [_element(p) if len(p) <= 2 and p[:1].isupper() else None for p in parts]
        if None in symbols or any(p in _NOT_SYMBOLS for p in parts):
            continue
        scan.take(*m.span())
        required.extend((m.start() + m["s"].index(p), sym) for p, sym in zip(parts, symbols))


_SITE_NOUN = r"(?i:sites?|positions?|sublattices?|holes?)(?![A-Za-z])(?:[-\s]+(?i:cations?|ions?|elements?|atoms?))?"
_SITE_WORD = (r"(?:(?P<label>[A-Z]'?)(?![A-Za-z0-9])|(?P<coord>(?i:tetrahedral|octahedral|cubic|dodecahedral|"
              r"cuboctahedral|(?:\d{1,2}|two|three|four|six|eight|twelve)[-\s]?fold)(?![A-Za-z0-9]))"
              r"(?:[-\s]+(?i:coordinated|coordination))?)[-\s]+" + _SITE_NOUN)
_FOLD = {"tetrahedral": 4, "octahedral": 6, "cubic": 8, "dodecahedral": 8, "cuboctahedral": 12,
         "two": 2, "three": 3, "four": 4, "six": 6, "eight": 8, "twelve": 12}
_FOLD_KEYS = {4: "tetrahedral", 6: "octahedral"}
_SITE_EXCLUDED_BEFORE = re.compile(r"\b(?:without|no|not|excluding|free\s+of|except)\s+$", re.I)


@lru_cache(maxsize=1)
def _site_patterns() -> tuple[re.Pattern, ...]:
    """'Ba on the A site', 'A-site Ba', 'A = Ba'; _SITE_WORD names the site."""
    lst = _list_pattern()[0]
    on = (r"\s+(?i:(?:(?:is|are)\s+)?(?:on|at|in|into|occupying|occupies|occupy|(?:sitting|sits|sit|placed|"
          r"located|residing)\s+(?:on|at|in)|as))\s+(?i:(?:one\s+of\s+the|the|an?|all|both|its)\s+)?")
    return (re.compile(r"(?<![A-Za-z0-9'])(?P<list>" + lst + r")" + on + _SITE_WORD),
            re.compile(r"(?<![A-Za-z0-9'])" + _SITE_WORD + r"\s*(?i:(?:(?:is|are)\s+)?(?:occupied|filled|taken)\s+"
                       r"(?:by|with)\s+|(?:is|are|=|:|with)\s*)?(?P<list>" + lst + r")"),
            re.compile(r"(?<![A-Za-z0-9'])(?P<label>[A-Z]'?)\s*=\s*(?P<list>" + lst + r")"))


#: A site phrase before the family is known: (position, role letter or coordination number, items).
_SitePhrase = tuple[int, "str | int", list[_Item]]


def _read_sites(scan: _Scan) -> list[_SitePhrase]:
    """Site phrases, masked; 'cubic site' is read here, before 'cubic' could be a crystal system."""
    out = []
    for pattern in _site_patterns():
        for m in list(pattern.finditer(scan.masked())):
            if not scan.is_free(*m.span()) or _SITE_EXCLUDED_BEFORE.search(scan.text, 0, m.start()):
                continue
            items = _list_items(scan, *m.span("list"))
            if items is None:
                continue
            coord = m.groupdict().get("coord")
            if coord:
                word = coord.lower().replace("-", "").replace(" ", "").removesuffix("fold")
                label: str | int = int(word) if word.isdigit() else _FOLD[word]
            else:
                label = m["label"]
            out.append((m.start(), label, items))
            scan.take(*m.span())
    return out


def _site_key(card: FamilyCard | None, label: str | int, symbols: list[str]) -> str:
    """The card's role for a site letter or coordination number; a letter the card lacks is an error."""
    if isinstance(label, str):
        if card is not None and label not in [s.role for s in card.sites]:
            raise _fail(f"a {card.name.split('(')[0].strip()} has no {label} site; its sites are "
                        f"{', '.join(s.role for s in card.sites)}")
        return label
    if card is not None:
        anion = all(e in _ANION_ELEMENTS for e in symbols)
        fits = [s.role for s in card.sites if s.coordination == label and (s.kind == "anion") == anion]
        if len(fits) == 1:
            return fits[0]
    return _FOLD_KEYS.get(label, f"{label}-fold")


def _resolve_sites(req: Request, phrases: list[_SitePhrase], required: list[_Item], anyof: list[_Item]) -> None:
    """Fill req.site_elements once the family is known; one element is required, several are any-of."""
    card = find_family(req.family)
    for pos, label, items in phrases:
        symbols = _flat(items)
        key = _site_key(card, label, symbols)
        site = next((s for s in card.sites if s.role == key), None) if card else None
        if site is not None and site.elements is not None and not set(symbols) & set(site.elements):
            raise _fail(f"the {key} site of a {card.name.split('(')[0].strip()} takes "
                        f"{', '.join(site.elements)}, not {', '.join(symbols)}")
        if key in req.site_elements:
            kept = [e for e in req.site_elements[key] if e in symbols]
            if not kept:
                raise _fail(f"the {key} site is given as {', '.join(req.site_elements[key])} and as "
                            f"{', '.join(symbols)}; name it once, e.g. 'Ba or Sr on the A site'")
            symbols = kept
        req.site_elements[key] = symbols
        if len(symbols) == 1:
            required.append((pos, symbols[0]))
            if site is not None and site.kind == "anion" and symbols[0] in _CLASS_OF:
                req.anion_classes.append(_CLASS_OF[symbols[0]])
        else:
            anyof.append((pos, tuple(symbols)))


@lru_cache(maxsize=1)
def _substitution_patterns() -> tuple[re.Pattern, ...]:
    """'Sr instead of Ca', 'replace Ca with Sr', 'substituting Sr for Ca', 'Ca replaced by Sr'."""
    lst = _list_pattern()[0]
    new, old = r"(?P<new>" + lst + r")", r"(?P<old>" + lst + r")"
    b = r"(?<![A-Za-z0-9'])"
    return (re.compile(b + new + r"\s+(?i:instead\s+of|in\s+place\s+of|in\s+lieu\s+of|rather\s+than|replacing|"
                       r"substituting\s+for)\s+" + old),
            re.compile(r"\b(?i:replac(?:e|es|ed|ing)|swap(?:s|ped|ping)?|substitut(?:e|es|ed|ing))\s+" + old
                       + r"\s+(?i:with|by)\s+" + new),
            re.compile(r"\b(?i:substitut(?:e|es|ed|ing))\s+" + new + r"\s+(?i:for)\s+" + old),
            re.compile(b + new + r"\s+(?i:(?:is\s+|being\s+)?substituted)\s+(?i:for)\s+" + old),
            re.compile(b + old + r"\s+(?i:(?:is\s+|being\s+)?(?:replaced|substituted|swapped))\s+(?i:by|with)\s+" + new))


def _read_substitutions(scan: _Scan, required: list[_Item], anyof: list[_Item], excluded: list[_Item]) -> None:
    """The new element is required (a group: any of it), the replaced one excluded."""
    for pattern in _substitution_patterns():
        for m in list(pattern.finditer(scan.masked())):
            new, old = _list_items(scan, *m.span("new")), _list_items(scan, *m.span("old"))
            if not scan.is_free(*m.span()) or new is None or old is None:
                continue
            for pos, value in new:
                (required if isinstance(value, str) else anyof).append((pos, value))
            excluded.extend((pos, s) for pos, value in old for s in _flat([(pos, value)]))
            scan.take(*m.span())


# -- formula templates and -ate words ------------------------------------------------------------
def _template_tokens(word: str) -> list[tuple[str, bool, int, int]] | None:
    """(symbol or placeholder, is placeholder, count, offset) per token of a template, or None."""
    symbols, _ = _elements()
    raw = [(m[1], m[2], int(m[3] or 1), m.start()) for m in _TOKEN.finditer(word)]
    if not any(prime or s in _PLACEHOLDERS for s, prime, _, _ in raw):
        return None
    out = []
    for s, prime, n, off in raw:
        if prime or s in _PLACEHOLDERS or s in _MAYBE_PLACEHOLDERS:
            out.append((s + prime, True, n, off))
        elif s in symbols:
            out.append((s, False, n, off))
        else:
            return None  # TEM, XRD: letters that are neither
    if not any(c.isdigit() for c in word):  # without counts only clear templates: XYZ, AB, CoMnX
        concrete = [s for s, ph, _, _ in out if not ph]
        if concrete and any(len(s) == 1 for s in concrete):
            return None
        if not concrete and len(out) < 3 and word not in _SHORT_TEMPLATES:
            return None
    return out


def _fits_site(symbol: str, site: SiteSpec) -> bool:
    if site.elements is not None:
        return symbol in site.elements
    return symbol in _ANION_ELEMENTS if site.kind == "anion" else symbol not in _NOT_CATIONS


def _template_card(tokens: list[tuple[str, bool, int, int]], named: str | None) -> tuple[str, list[str]] | None:
    """(card key, role per token): the card a family word names, else the first (ionic before
    intermetallic) whose site counts and elements fit in card order, else the only one in any order."""
    counts = [n for _, _, n, _ in tokens]

    def fits(sites) -> bool:
        return [s.count for s in sites] == counts and all(
            ph or _fits_site(sym, site) for (sym, ph, _, _), site in zip(tokens, sites))

    cards = sorted(FAMILIES.values(), key=lambda c: c.intermetallic)
    if named is not None:
        cards = [get_family(named)]
    for card in cards:
        if fits(card.sites):
            return card.key, [s.role for s in card.sites]
    found = {}
    for card in cards:
        if len(card.sites) == len(tokens):
            perm = next((p for p in permutations(card.sites) if fits(p)), None)
            if perm is not None:
                found[card.key] = [s.role for s in perm]
    return next(iter(found.items())) if len(found) == 1 else None


def _read_templates(scan: _Scan, phrases: list[_SitePhrase]) -> list[tuple[str, tuple[int, int]]]:
    """Template words: (family, span) each; concrete symbols become site phrases of their role."""
    pattern, names = _family_lookup()
    out = []
    for m in list(_TEMPLATE.finditer(scan.masked())):
        tokens = _template_tokens(m.group(0))
        if tokens is None:
            continue
        fam = pattern.match(scan.masked(), m.start())
        if fam and fam.end() > m.end():
            continue  # 'MAX phase' is a family name, not the template MAX
        found = _template_card(tokens, _family_key(fam.group(0), names) if fam and fam.end() == m.end() else None)
        if found is None:
            continue
        key, roles = found
        scan.take(*m.span())
        out.append((key, m.span()))
        for (sym, ph, _, off), role in zip(tokens, roles):
            if not ph:
                phrases.append((m.start() + off, role, [(m.start() + off, sym)]))
    return out


@lru_cache(maxsize=1)
def _ate() -> tuple[re.Pattern, dict[str, str]]:
    """'titanate', 'thiostannate', 'phosphate-free': oxyanion words (knowledge.lookup._ATE and more)."""
    from genms_pmg.knowledge.lookup import _ATE

    table = {**_ATE, **_ATE_EXTRA}
    words = "|".join(sorted(table, key=len, reverse=True))
    return re.compile(r"(?<![A-Za-z0-9])(?:(?P<pre>thio|seleno|telluro)-?)?(?P<w>" + words + r")s?(?![A-Za-z0-9])"
                      r"(?:[-\s]+(?P<free>free)\b(?!\s+(?:of|from)\b)|-(?:based|containing|bearing|type)\b)?",
                      re.I), table


def _read_ates(scan: _Scan, req: Request, required: list[_Item], excluded: list[_Item],
               anchors: list[tuple[int, int]]) -> None:
    """An -ate names its element and an oxide (a thio-ate a sulfide); '-free' excludes the element."""
    pattern, table = _ate()
    for m in list(pattern.finditer(scan.masked())):
        word = m["w"].lower()
        if word in _minerals() and _LIKE_BEFORE.search(scan.text, 0, m.start()):
            continue  # 'like chromite' names the mineral
        scan.take(*m.span())
        if m["free"]:
            excluded.append((m.start(), table[word]))
            continue
        required.append((m.start("w"), table[word]))
        req.anion_classes.append(_PREFIX_ANIONS[m["pre"].lower()] if m["pre"] else "oxide")
        anchors.append(m.span())


def _read_prefixes(scan: _Scan, req: Request, anchors: list[tuple[int, int]]) -> None:
    """'thiospinel', 'seleno-spinel': the prefix names the anion, the rest is left for the family."""
    pattern, _ = _family_lookup()
    for m in list(_PREFIX.finditer(scan.masked())):
        if pattern.match(scan.masked()[m.end():]):
            scan.take(*m.span())
            req.anion_classes.append(_PREFIX_ANIONS[m["p"].lower()])
            anchors.append(m.span())


def _formula(token: str) -> str | None:
    """Reduced formula of a token such as 'K2NaAlF6' with at least two real elements, else None."""
    from pymatgen.core import Composition

    if not re.fullmatch(_FORMULA, token):
        return None
    try:
        comp = Composition(token)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None
    symbols, _ = _elements()
    if len(comp) < 2 or any(str(el) not in symbols for el in comp.elements):
        return None
    return comp.reduced_formula


def _space_group(symbol: str) -> tuple[int, str] | None:
    """(number, crystal system) of a Hermann-Mauguin symbol, tolerating P21/c, P63mc and Pm3m."""
    from pymatgen.symmetry.groups import SpaceGroup

    compact = symbol.replace(" ", "")
    variants = [compact, re.sub(r"(?<=\d)(?=\d)", "_", compact)]
    variants += [re.sub(r"(?<=[a-z])3(?=[a-z]|$)", "-3", v) for v in variants]
    for v in dict.fromkeys(variants):
        try:
            group = SpaceGroup(v)
        except (ValueError, KeyError):
            continue
        return group.int_number, group.crystal_system
    return None


def _space_group_number(n: int) -> tuple[int, str]:
    from pymatgen.symmetry.groups import SpaceGroup

    if not 1 <= n <= 230:
        raise _fail(f"space group {n} does not exist; give a number from 1 to 230 or a symbol such as Fm-3m")
    return n, SpaceGroup.from_int_number(n).crystal_system


def _read_symmetry(scan: _Scan, req: Request) -> None:
    """Space group (number or symbol) and crystal system; they must agree when both are given."""
    groups: list[tuple[int, str]] = [_space_group_number(int(m["n"])) for m in scan.find(_SG_NUMBER)]
    for m in list(_SG_SYMBOL.finditer(scan.masked())):
        sym = m["s"]
        cue = _SG_CUE.search(scan.text[:m.start()].rstrip() + " ")
        # bare two-letter symbols (Pm, Cm, Pc) are elements or words unless 'space group' precedes them
        if len(sym.replace(" ", "")) < 3 and not cue:
            continue
        if _element(sym) is not None and not cue:
            continue
        found = _space_group(sym)
        if found is None:
            if cue:
                raise _fail(f"{sym!r} is not a space-group symbol; write it like Fm-3m, Pnma or P6_3mc, or give its number")
            continue
        groups.append(found)
        scan.take(*m.span())
        after = re.match(r"\s+(?:" + _SG_WORD + r"|structure)\b", scan.text[m.end():], re.I)
        if after:
            scan.take(m.end(), m.end() + after.end())
        if cue:
            scan.take(cue.start(), m.start())
    numbers = _unique([str(g[0]) for g in groups])
    if len(numbers) > 1:
        raise _fail(f"the request names several space groups ({', '.join(numbers)}); keep one")
    if groups:
        req.space_group, req.crystal_system = groups[0]
    systems = _unique([_CRYSTAL_SYSTEMS[m["w"].lower()] for m in scan.find(_CRYSTAL_SYSTEM)])
    if len(systems) > 1:
        raise _fail(f"the request names several crystal systems ({', '.join(systems)}); keep one")
    if systems:
        if req.crystal_system and req.crystal_system != systems[0]:
            raise _fail(f"space group {req.space_group} is {req.crystal_system}, not {systems[0]}; "
                        "drop one of the two")
        req.crystal_system = systems[0]


_TYPE_TAIL = r"(?:[-\s]+(?i:type|structure[d]?|phases?|like|compounds?|alloys?|superconductors?|metals?))?"


@lru_cache(maxsize=1)
def _type_patterns() -> tuple[re.Pattern, re.Pattern]:
    """Structure-type names of the names table: Strukturbericht symbols case-sensitive ('A15', 'D0_3'),
    the rest in any case; leftmost, then longest, wins."""
    from genms_pmg.knowledge.structure_types import names_table

    symbols = {r.name for r in names_table() if r.kind == "strukturbericht"}
    symbols |= {n.replace("_", "") for n in symbols if re.fullmatch(r"[a-z]\d+_\w+", n)}
    words = [n for n in structure_type_names() if n not in symbols]

    def alt(names: list[str], upper: bool) -> str:
        out = []
        for n in sorted(names, key=len, reverse=True):
            text = n[:1].upper() + n[1:] if upper else n
            out.append(r"[\s-]+".join(re.escape(w).replace("=", r"\s*=\s*") for w in text.split()))
        return "|".join(out)

    b, e = r"(?<![A-Za-z0-9'])", r"(?![A-Za-z0-9'])(?![-\s]+(?i:sites?|free)\b)"
    return (re.compile(b + "(?P<n>" + alt(words, False) + ")" + e + _TYPE_TAIL + e, re.I),
            re.compile(b + "(?P<n>" + alt(sorted(s for s in symbols if s in structure_type_names()), True) + ")"
                       + e + _TYPE_TAIL + e))


def _read_structure_types(scan: _Scan) -> list[tuple[StructureType, tuple[int, int]]]:
    """Structure-type names from the names table, masked: (type, span) in sentence order."""
    out = []
    for pattern in _type_patterns():
        for m in list(pattern.finditer(scan.masked())):
            if m["n"].isdigit() and re.search(r"(?:group|no\.?|number|#|sg)\s*$", scan.text[:m.start()], re.I):
                continue  # 'space group 122' is no 122 pnictide
            hand = _family_lookup()[0].match(scan.masked(), m.start())
            if hand and hand.end() >= m.end():
                continue  # a hand-written card's longer name ('122 pnictide') answers
            scan.take(*m.span())
            found = resolve_name(m["n"])
            if found is not None:
                out.append((found, m.span()))
    return sorted(out, key=lambda item: item[1])


def _read_named_formulas(scan: _Scan, req: Request, required: list, types: list[StructureType]) -> None:
    """With a structure type named, a formula beside it ('bixbyite In2O3', 'inverse Heusler Mn2CoAl') is
    the compound asked for: its elements are required and its ratio is the atom ratio. A member of the type
    in brackets ('litharge (red PbO)') restates the type and asks for nothing."""
    from pymatgen.core import Composition

    from genms_pmg.knowledge.prototypes import labels_of_formula

    labels = {lab for t in types for g in t.groups for lab in g}
    for m in list(re.finditer(r"(?<![A-Za-z0-9])" + _FORMULA + r"(?![A-Za-z0-9])", scan.masked())):
        formula = _formula(m.group(0))
        if formula is None:
            continue
        comp = Composition(formula)
        scan.take(*m.span())
        before = scan.text[:m.start()]
        in_brackets = before.rfind("(") > before.rfind(")")
        if in_brackets and set(labels_of_formula(formula)) & labels:
            continue  # '(red PbO)': the archetype, said to name the type
        required.extend((m.start(), el.symbol) for el in comp.elements)
        if req.atom_ratio is None:
            req.atom_ratio = _reduced([int(round(a)) for a in comp.get_el_amt_dict().values()])


def _read_free_elements(scan: _Scan, required: list) -> None:
    """With a structure type named, element names left anywhere ('CuAu-type iron platinum', 'A12 manganese')
    are the chemistry asked for. Only full names and two-letter symbols: one-letter symbols and English
    words (In, As, At) stay words."""
    _, names = _elements()
    for m in list(re.finditer(r"(?<![A-Za-z0-9'-])[A-Za-z]+(?![A-Za-z0-9'])", scan.masked())):
        word = m.group(0)
        sym = names.get(word.lower()) if len(word) > 2 else (word if len(word) == 2 and _element(word) == word
                                                              and word not in _ENGLISH_SYMBOLS
                                                              and word not in _NOT_SYMBOLS else None)
        if sym is None or _SITE_EXCLUDED_BEFORE.search(scan.text, 0, m.start()):
            continue
        scan.take(*m.span())
        required.append((m.start(), sym))


def _merged_types(found: list[StructureType]) -> StructureType:
    """Several names for one type ('CoSn-type kagome metal', 'CaB6-type hexaboride') give the most specific
    one; a name beside an archetype formula ('HfFe6Ge6-type kagome magnet') keeps the name (and its checks)
    with the archetype's labels. Names with nothing in common are refused."""
    from genms_pmg.knowledge.prototypes import labels_of_formula

    unique = list(dict.fromkeys(found))
    unique = [t for t in unique if t.groups] or unique[:1]  # names the data lacks give way to those it has
    if len(unique) == 1:
        return unique[0]
    names = [t for t in unique if not t.name.endswith("-type")]
    for t in unique:  # 'anti-La2O3 Mg3Sb2 analogue': the formula is the name's archetype, the name picks the polymorph
        if t.name.endswith("-type") and len(names) == 1:
            name_labels = {lab for g in names[0].groups for lab in g}
            if set(labels_of_formula(t.archetypes[0])) & name_labels:
                return names[0]
    label_sets = [{lab for g in t.groups for lab in g} for t in unique]
    common = set.intersection(*label_sets)
    if common:
        best = min(range(len(unique)), key=lambda i: (len(label_sets[i]), i))
        named = next((t for t in unique if not t.name.endswith("-type")), unique[best])
        groups = tuple(g for g in unique[best].groups if set(g) & common) or unique[best].groups
        return StructureType(named.name, groups, unique[best].archetypes, (), named.sources)
    formula_types = [t for t in unique if t.name.endswith("-type")]
    names = [t for t in unique if not t.name.endswith("-type")]
    if len(formula_types) == 1 and len(names) == 1:
        return StructureType(names[0].name, formula_types[0].groups, formula_types[0].archetypes, (),
                             names[0].sources + formula_types[0].sources)
    raise _fail(f"the request names several structure types ({', '.join(t.name for t in unique)}); "
                "ask for one at a time")


def _type_of_like(like: str, *, named: bool = False) -> StructureType | None:
    """The structure type of 'like X' / 'X-type' when X is no hand-written card's: X's own prototype
    in the data, else a names-table row for X ('CrI3-type' resolves through BiI3). An X the data lacks is
    refused unless a type name was given too ('a YPO4-like xenotime': the name answers)."""
    found = resolve_formula(like) if _formula(like) else None
    if found is None:
        found = resolve_name(like)
    if found is None and _formula(like) and not named:
        raise _fail(f"{like} is not in the bundled structure data and no structure type is known by that name; "
                    f"give one of its structures with --like FILE.cif, or name its structure type")
    return found


def _widened_family(req: Request, said: str, named: list[str], anyof: list) -> str:
    """A hand-written card gives way to a listed variant of the same name ('olivine' with Li, Fe and
    phosphate: the LiFePO4 olivine; 'garnet' with Li, La and Zr: Li7La3Zr2O12) when the card's sites cannot
    hold the named elements, or the data knows the variant with every named element and the card with none."""
    from genms_pmg.knowledge.prototypes import prototype_records

    key = req.family
    card = FAMILIES[key]
    found = resolve_name(said)
    if found is None or not found.groups or not named:
        return key
    needed = len(set(named)) + len(anyof) + sum(
        1 for a in req.anion_classes if not set(ANION_CLASSES[a][0]) & set(named))
    records = prototype_records()
    card_knows = any(set(named) <= set(m.roles) for lab in card.oqmd_prototypes if lab in records
                     for m in records[lab].members)
    if needed <= len(card.sites) and card_knows:
        return key
    chosen = choose_family(found, required=named)
    if not chosen.startswith("type:") or len(get_family(chosen).sites) < needed:
        return key
    variant_knows = any(set(named) <= set(m.roles) for m in get_family(chosen).extra["members"])
    return chosen if needed > len(card.sites) or variant_knows else key


_UNKNOWN_TYPE = re.compile(
    r"(?<![A-Za-z0-9'])(?P<w>[A-Za-z][A-Za-z0-9_']*)[-\s]+(?:type|structured)\b"
    r"|\b(?:in|with|of|adopting|adopts|taking)\s+the\s+(?P<w2>[A-Za-z][A-Za-z0-9_']*)\s+(?:structure|type)\b"
    r"|\bisostructural\s+(?:with|to)\s+(?P<w3>[A-Za-z][A-Za-z0-9_']*)", re.I)
_NOT_TYPE_WORDS = frozenset("""crystal layered same this that its their similar known new open framework tunnel cage
chain sheet cubic hexagonal tetragonal orthorhombic monoclinic triclinic trigonal rhombohedral ordered disordered
close packed closed simple complex related distorted ideal parent prototype any some which what different other p n
band electronic magnetic host defect structure type""".split())


def _refuse_unknown_types(scan: _Scan) -> None:
    """A structure-type word no rule understood ('a foobarite-type oxide') is refused in one line with
    the closest known names, never dropped as an ignored word."""
    for m in _UNKNOWN_TYPE.finditer(scan.masked()):
        key = "w" if m["w"] else "w2" if m["w2"] else "w3"
        word = m[key]
        if word.lower() in _NOT_TYPE_WORDS or word.lower() in _STOPWORDS or _element(word) is not None:
            continue
        close = close_names(word)
        hint = f"close known names: {', '.join(close)}; " if close else ""
        raise _fail(f"unknown structure type {word!r}; {hint}`genms types` lists the known ones "
                    "(a formula such as CaWO4-type, or --like FILE.cif, also works)")


def _read_like(scan: _Scan, req: Request) -> None:
    """'like K2NaAlF6', 'the structure of CaTiO3', 'like the mineral halite', 'NaCl-type'."""
    for m in list(_LIKE.finditer(scan.masked())):
        if not scan.is_free(*m.span()):
            continue  # the phrase jumps over words another rule used ('like the mineral halite with')
        token = m["x"] or m["y"]
        formula = _formula(token)
        if formula is None and not (m["mineral"] and token[:1].isalpha()) and token.lower() not in _minerals():
            continue
        req.like = token if formula else token.lower()
        scan.take(*m.span())
        return


@lru_cache(maxsize=1)
def _minerals() -> dict:
    from genms_pmg.knowledge.minerals import MINERALS

    return MINERALS


def _family_of_like(like: str) -> str | None:
    """The card a 'like X' names: X is a card example or a mineral of a card, or the OQMD-ICSD
    ground state of formula X has a card's prototype label (knowledge.lookup, no embeddings)."""
    from genms_pmg.knowledge.lookup import OQMD_GROUND, evidence_for

    evidence = evidence_for(like)
    strong = sorted(((ev.strength, key) for key, ev in evidence.items() if ev.strength >= OQMD_GROUND),
                    key=lambda item: (-item[0], list(FAMILIES).index(item[1])))
    if len(strong) > 1 and {key for _, key in strong[:2]} == {"double_perovskite", "elpasolite"} \
            and strong[0][0] == strong[1][0]:
        return "elpasolite"  # a halide double perovskite: the specific card, as for family names
    if not strong or (len(strong) > 1 and strong[0][0] == strong[1][0]):
        return None  # nothing solid, or two cards equally likely: leave it to the user
    return strong[0][1]


def _read_avoided_formulas(scan: _Scan, req: Request) -> None:
    """'other than BaTiO3 and SrTiO3': formulae the user does not want proposed."""
    for m in list(_AVOID_FORMULAS.finditer(scan.masked())):
        tokens = re.findall(_FORMULA, m["list"])
        formulas = [f for f in (_formula(t) for t in tokens) if f]
        if formulas:
            req.avoid_formulas.extend(formulas)
            scan.take(*m.span())


def _ratio_fits(ratio: list[int], counts: list[int]) -> bool:
    """Whether merging the family's sites into len(ratio) elements can give ``ratio``."""
    k = len(ratio)
    for labels in product(range(k), repeat=len(counts)):
        if len(set(labels)) == k:
            sums = [0] * k
            for count, label in zip(counts, labels):
                sums[label] += count
            if _reduced(sums) == ratio:
                return True
    return False


def _reduced(values: list[int]) -> list[int]:
    div = reduce(gcd, values)
    return sorted(v // div for v in values)


def _narrowest(classes: list[str]) -> list[str]:
    """Drop a class that another named class narrows ('a chalcogenide perovskite: a sulfide' -> sulfide)."""
    sets = {c: set(ANION_CLASSES[c][0]) for c in classes if c in ANION_CLASSES}
    return [c for c in classes if not any(d != c and sets.get(d) and sets[d] < sets.get(c, set()) for d in classes)]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def parse(text: str, *, preset_family: str | None = None) -> Request:
    """Parse a sentence into a :class:`Request`; raises UsageError when it is empty, names an unknown
    element, asks for something impossible or contains nothing recognisable.

    ``atom_ratio`` is stored reduced by its gcd ("2:4:8" -> [1, 2, 4]). When a sentence names
    Materials Project or ICSD as the reference, ``novelty_sources`` holds just those. Element lists
    keep the order the sentence names them in.
    """
    if not isinstance(text, str) or not text.strip():
        raise _fail(f"the request is empty; describe the material you want, {_EXAMPLE}")
    scan = _Scan(text)
    req = Request(text=text)

    phrases, generic = scan.find(_SOURCE_PHRASE), scan.find(_NOVEL)
    sources = [("mp" if src.lower() == "mp" or src.lower().startswith("materials") else "icsd")
               for m in phrases for src in (m["src"], m["src2"]) if src]
    if sources or generic:
        req.novel = True
        req.novelty_sources = [s for s in ("mp", "icsd") if s in sources] if sources else ["mp", "icsd"]

    _read_avoided_formulas(scan, req)
    ratios = {tuple(int(x) for x in m["r"].split(":")) for m in scan.find(_RATIO)}
    if len(ratios) > 1:
        raise _fail("the request gives more than one atom ratio; keep one, e.g. 'atom ratio 1:1:2'")
    if ratios:
        ratio = list(ratios.pop())
        if 0 in ratio:
            raise _fail("an atom ratio needs positive integers, e.g. 'atom ratio 1:1:2'")
        req.atom_ratio = _reduced(ratio)

    for m in scan.find(_MAX_ATOMS):
        word = (m["n"] or m["n2"]).lower()
        n = int(_NUMBER_WORDS.get(word, word)) - (1 if m["lt"] else 0)
        req.max_atoms = n if req.max_atoms is None else min(req.max_atoms, n)
    if req.max_atoms is not None and req.max_atoms < 1:
        raise _fail("the atom limit must allow at least one atom, e.g. 'at most 20 atoms'")
    req.metastable = bool(scan.find(_METASTABLE))
    req.stable = bool(scan.find(_STABLE))
    req.earth_abundant = bool(scan.find(_EARTH_ABUNDANT))
    req.non_toxic = bool(scan.find(_NON_TOXIC))
    # (position, symbol) and (position, group) so the lists follow the sentence's order
    required: list[_Item] = []
    anyof: list[_Item] = []
    excluded: list[_Item] = []
    sites = _read_sites(scan)
    types = _read_structure_types(scan)
    sheet_spans = [m.span() for m in scan.find(_MXENE)]
    if sheet_spans:
        req.sheet = "mxene"
        terminations = scan.find(_TERMINATION)
        if terminations:
            m = terminations[0]
            req.termination = "bare" if m["bare"] else _TERMINATIONS[(m["t"] or m["t2"]).lower()]
        if types:
            raise _fail(f"an MXene is a sheet cut from a MAX phase, not a {types[0][0].name}; drop one of the two")
    _read_symmetry(scan, req)
    _read_substitutions(scan, required, anyof, excluded)
    _read_chemical_systems(scan, required)
    _read_ide_words(scan, required)

    anchors: list[tuple[int, int]] = []
    for m in scan.find(_ANION):
        anion = _ANION_ALIASES.get(m["a"].lower(), m["a"].lower())
        if (m["pre"] or "").lower() == "oxy":
            # an oxynitride holds both anions: O and N are each required (mixed-anion sites)
            req.anion_classes.append("oxide")
            required.append((m.start(), "O"))
            members = ANION_CLASSES[anion][0]
            if len(members) == 1:
                required.append((m.start(), members[0]))
            else:
                anyof.append((m.start(), tuple(members)))
        req.anion_classes.append(anion)
        anchors.append(m.span())
    _read_ates(scan, req, required, excluded, anchors)
    _read_prefixes(scan, req, anchors)
    families = _read_templates(scan, sites)
    from_templates = {k for k, _ in families}
    pattern, names = _family_lookup()
    for m in scan.find(pattern):
        families.append((_family_key(m.group(0), names), m.span()))
        named = re.split(r"[\s-]+", m.group(0))[0]  # 'CuFeO2-type', 'the K2NaAlF6 structure'
        if req.like is None and _formula(named):
            req.like = named
    keys = _unique([k for k, _ in families])
    if set(keys) == {"double_perovskite", "elpasolite"}:
        keys = ["elpasolite"]  # an elpasolite is a halide double perovskite: keep the specific one
    named_keys = [k for k in keys if k not in from_templates]
    if len(keys) > 1 and len(named_keys) == 1 and _ratio_fits(
            _reduced([s.count for s in FAMILIES[named_keys[0]].sites]),
            [s.count for s in FAMILIES[keys[0]].sites]):
        keys = named_keys  # 'ABX2 chalcopyrites': the named family, which the template word also fits
    if len(keys) > 1:
        raise _fail(f"the request names several crystal families ({', '.join(keys)}); ask for one at a time")
    req.family = keys[0] if keys else None
    if types and keys:
        raise _fail(f"the request names a {scan.text[slice(*families[0][1])].strip()} and a "
                    f"{types[0][0].name}; ask for one structure type at a time")
    _read_like(scan, req)
    if req.family is None and req.like:
        req.family = None if types else _family_of_like(req.like)
        if req.family is None:
            like_type = _type_of_like(req.like, named=bool(types))
            if like_type is not None:
                types = [*types, (like_type, (0, 0))]
    if types:
        _read_named_formulas(scan, req, required, [t for t, _ in types])

    gaps = scan.find(_GAP_WORDS)
    kinds = _unique(["wide_gap" if g["wide"] else "semiconductor" if g["semi"] else "insulator" for g in gaps])
    if "wide_gap" in kinds:
        kinds = [k for k in kinds if k != "semiconductor"]  # 'wide-gap semiconductor' is one kind
    if len(kinds) > 1:
        raise _fail(f"the request asks for both a {kinds[0]} and a {kinds[1]}; keep one")
    nonmetal = gaps + scan.find(_NONMETAL)
    metal = []
    for m in _METAL.finditer(scan.masked()):
        plain_metal = m["w"].lower().startswith("metal") and m["w"].lower() != "metallic"
        if _METAL_BEFORE.search(text[:m.start()]) and m["w"].lower() != "metallic":
            continue
        if plain_metal and _METAL_AFTER.match(text, m.end()):
            continue
        scan.take(*m.span())
        metal.append(m.group(0))
    if metal and nonmetal:
        raise _fail(f"the request asks for both a metal ({metal[0]!r}) and a non-metal "
                    f"({nonmetal[0].group(0)!r}); keep one")
    req.metallic = True if metal else (False if nonmetal else None)
    req.band_gap = "metal" if metal else (kinds[0] if kinds else None)

    anchors += [m.span() for m in _NOUNS.finditer(text)]
    only = _read_elements(scan, req, [s for _, s in families] + [s for _, s in types] + sheet_spans + anchors,
                          required, anyof, excluded)
    if types:
        _read_free_elements(scan, required)
        types = [(_merged_types([t for t, _ in types]), types[0][1])]
    named_elements = [s for _, s in required]
    if preset_family is not None:
        if (types or families) and req.family != preset_family:
            said = types[0][0].name if types else scan.text[slice(*families[0][1])].strip()
            raise _fail(f"the request names a {said} but the --like structure is another type; drop one of the two")
        req.family, types = preset_family, []
    if types:
        req.family = choose_family(types[0][0], required=named_elements, ratio=req.atom_ratio,
                                   space_group=req.space_group)
        if req.space_group is None and (variant := variant_space_group(types[0][0], req.family)):
            req.space_group, req.crystal_system = _space_group_number(variant)
    elif families and req.family in FAMILIES:
        req.family = _widened_family(req, scan.text[slice(*families[0][1])], named_elements, anyof)
    _resolve_sites(req, sites, required, anyof)
    req.required_elements = _unique([s for _, s in sorted(required, key=lambda item: item[0])])
    req.excluded_elements = _unique([s for _, s in sorted(excluded, key=lambda item: item[0])])
    groups = [list(g) for g in dict.fromkeys(tuple(_unique(list(g))) for _, g in sorted(anyof, key=lambda i: i[0]))]
    req.required_any = [g for g in groups if not set(g) & set(req.required_elements)]  # already met
    req.anion_classes = _narrowest(_unique(req.anion_classes))
    _refuse_unknown_types(scan)
    _check(req, only)
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9']*", scan.masked())
    req.ignored = _unique([w for w in words if w.lower() not in _STOPWORDS])
    return req


def _read_elements(scan: _Scan, req: Request, anchors: list[tuple[int, int]], required: list[_Item],
                   anyof: list[_Item], excluded: list[_Item]) -> list[str]:
    """Required, any-of and excluded items from attachments, cues and modifiers; returns those after 'only'."""
    text, only = scan.text, []
    for m in list(_GROUP_ATTACHED.finditer(scan.masked())):  # 'rare-earth-free', 'transition-metal-based'
        group = _group_of(_GROUP.match(text, m.start()))
        if m["kind"].lower() == "free":
            excluded.extend((m.start(), s) for s in group)
        else:
            anyof.append((m.start(), group))
        scan.take(*m.span())
    for regex in (_ATTACHED, _SPACE_FREE):
        for m in regex.finditer(scan.masked()):
            parts = re.split(r"[-/]", m["els"])
            free = regex is _SPACE_FREE or m["kind"].lower() == "free"
            syms = []
            for part in reversed(parts):
                if (sym := _element(part)) is None:
                    if not syms:
                        _check_symbol_like(part)
                    break
                syms.insert(0, sym)
            if syms:
                (excluded if free else required).extend((m.start(), s) for s in syms)
                scan.take(*m.span())

    consumed = 0
    for m in _CUE.finditer(scan.masked()):
        if m.start() < consumed:
            continue
        exclusion = m["exc"] is not None
        items, first, end = _read_list(scan, m.end())
        if not items:
            continue
        alternatives = len(items) > 1 and not exclusion and bool(
            re.search(r"\bor\b", text[first:end], re.I)) and not re.search(r"\band\b|&|\+", text[first:end], re.I)
        if exclusion:
            excluded.extend((pos, s) for pos, value in items for s in _flat([(pos, value)]))
        elif alternatives:  # 'containing Li or Na': one of them, not both
            anyof.append((first, tuple(_flat(items))))
        else:
            for pos, value in items:
                (required if isinstance(value, str) else anyof).append((pos, value))
            if re.search(r"\bonly\b", text[m.end():first], re.I):
                only.extend(v for _, v in items if isinstance(v, str))
        scan.take(*m.span())
        scan.take(first, end)
        consumed = end

    for start, _ in sorted(anchors):  # "a Ni half-Heusler", "lead halide perovskite", "a rare-earth titanate"
        pos = start
        while True:
            g = _GROUP_BEFORE.search(text, 0, pos)
            if g and g["gap"] and scan.is_free(g.start(), pos):
                anyof.append((g.start(), _group_of(_GROUP.match(text, g.start()))))
                scan.take(g.start(), pos)
                pos = g.start()
                continue
            b = _BACK.search(text, 0, pos)
            if not (b and b["gap"]):
                break
            if any(s <= b.start() < e for s, e in anchors):
                pos = b.start()
                continue
            sym = _element(b["w"]) if scan.is_free(*b.span("w")) else None
            if sym is None or (len(b["w"]) <= 2 and _at_sentence_start(text, b.start())
                               and (b["w"] in _ENGLISH_SYMBOLS or len(b["w"]) == 1)) \
                    or _ROMAN_BEFORE.search(text, 0, b.start()):  # 'III-V semiconductor' is no vanadium
                break
            required.append((b.start(), sym))
            scan.take(b.start(), pos)
            pos = b.start()
    return only


def _check(req: Request, only: list[str]) -> None:
    """Refuse requests that are empty of content or cannot be satisfied."""
    if not (req.family or req.required_elements or req.required_any or req.anion_classes or req.atom_ratio or req.like
            or req.sheet):
        some = ", ".join(c.key.replace("_", " ") for c in list(FAMILIES.values())[:6])
        raise _fail(f"found no crystal family, element, anion class or atom ratio in {req.text[:60]!r}; "
                    f"name a family ({some}, ...), an element or an anion class, {_EXAMPLE}")
    superheavy = [e for e in [*req.required_elements, *(x for g in req.required_any for x in g)]
                  if Element(e).Z >= _FIRST_SUPERHEAVY]
    if superheavy and (superheavy[0] in req.required_elements
                       or any(set(g) <= set(superheavy) for g in req.required_any)):
        raise _fail(f"{superheavy[0]} (Z={Element(superheavy[0]).Z}) is a synthetic superheavy element made a few "
                    "atoms at a time, with no crystalline compounds; choose another element")
    both = [e for e in req.required_elements if e in req.excluded_elements]
    if both:
        raise _fail(f"{both[0]} is both required and excluded; keep only one of the two")
    for group in req.required_any:
        if set(group) <= set(req.excluded_elements):
            raise _fail(f"the request needs one of {', '.join(group)} but excludes all of them; drop one of the two")
    if req.atom_ratio and len(req.required_elements) > len(req.atom_ratio):
        raise _fail(f"atom ratio {':'.join(map(str, req.atom_ratio))} has {len(req.atom_ratio)} parts but "
                    f"{len(req.required_elements)} elements are required; add parts or drop elements")
    if req.family is None:
        return
    card: FamilyCard = get_family(req.family)
    label = card.name.split("(")[0].strip()
    if card.intermetallic and req.anion_classes:
        # an intermetallic takes an anion class only where a site lists one of its elements
        # (a MAX phase carbide, a ThCr2Si2 phosphide), never a Heusler oxide
        listed = {el for site in card.sites for el in site.elements or ()}
        misfit = [a for a in req.anion_classes if not set(ANION_CLASSES[a][0]) & listed]
        if misfit:
            raise _fail(f"a {label} is an intermetallic and cannot be an {misfit[0]}; "
                        f"drop '{misfit[0]}' or choose an ionic family such as perovskite")
    noble = [e for e in req.required_elements if e in _NOBLE_GASES]
    if noble:
        raise _fail(f"noble gas {noble[0]} cannot be part of a {label}; choose another element")
    needed = len(req.required_elements) + len(req.required_any) + sum(
        1 for a in req.anion_classes if not set(ANION_CLASSES[a][0]) & set(req.required_elements))
    if only and needed < 2:
        raise _fail(f"a {label} ({card.template}) needs at least two elements but the request allows only "
                    f"{', '.join(only)}; drop 'only' or add elements")
    if needed > len(card.sites):
        raise _fail(f"a {label} ({card.template}) has {len(card.sites)} sites but the request needs {needed} "
                    f"elements; drop some elements or anion classes")
    if req.atom_ratio and not _ratio_fits(req.atom_ratio, [s.count for s in card.sites]):
        raise _fail(f"atom ratio {':'.join(map(str, req.atom_ratio))} does not fit a {label} ({card.template}, "
                    f"ratio {':'.join(map(str, card.ratio))}); drop the ratio or the family")
    atoms = sum(s.count for s in card.sites)
    if req.max_atoms is not None and req.max_atoms < atoms:
        raise _fail(f"a {label} needs at least {atoms} atoms per cell but at most {req.max_atoms} were "
                    f"allowed; raise the atom limit")


def parse_request(text: str, *, like=None) -> Request:
    """Parse a sentence into a :class:`~genms_pmg.request.Request` (rule-based, deterministic).

    ``like``: a pymatgen ``Structure`` whose structure type the answers must take (CLI ``--like FILE.cif``):
    its space group and Wyckoff sites are matched to a prototype of the bundled data, and the search looks
    for members of that type.

    Raises:
        UsageError: the text is empty, names an unknown element, asks for something impossible,
            or contains nothing the parser recognises; the ``like`` structure's type is not in the data.
    """
    if like is None:
        return parse(text)
    from genms_pmg.knowledge.prototypes import derived_key, label_of_structure

    label, described = label_of_structure(like)
    if label is None:
        raise _fail(f"the --like structure ({like.composition.reduced_formula}, {described}) matches none of the "
                    "7,693 prototypes of the bundled OQMD-ICSD data; name its structure type or an archetype compound")
    formula = like.composition.reduced_formula
    req = parse(text, preset_family=derived_key(f"{formula}-type", [label]))
    req.like = formula
    return req
