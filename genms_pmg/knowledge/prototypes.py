"""Family cards derived from every prototype label of the bundled OQMD-ICSD data.

The hand-written cards of :mod:`~genms_pmg.knowledge.families` cover 35 families; the data knows 7,693
structure types with their members. ``data/prototype_cards.json.gz`` (built by
``scripts/build_prototype_cards.py``) keeps, per OQMD label, the space group, the Wyckoff letters of each
site role, the members (most stable first) with the element on each role, their OQMD stability and PBE
band gap, and oxidation-state guesses per role. :func:`derived_card` turns one or more labels into a
:class:`~genms_pmg.knowledge.families.FamilyCard` in about a millisecond, so every consumer of cards
(proposers, templates, family match, diffusion skeletons, retrieval) treats a derived type like a
hand-written one.

A derived family key reads ``type:<name>:<label>[+<label>...]``: the structure-type name the user's words
resolved to, then the OQMD labels of its variants (one site template, one or more space groups).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from genms_pmg.errors import DataUnavailableError, UsageError
from genms_pmg.knowledge.families import FamilyCard, SiteSpec

__all__ = ["PrototypeRecord", "Member", "derived_card", "derived_key", "parse_derived_key", "prototype_records",
           "labels_of_formula", "is_derived_key"]

_VERSION = 2  # 2: oxidation states counted per card role (canonical_order)
_PREFIX = "type:"
#: Roles of a derived card, in the order of the label's anonymous formula.
_ROLE_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Share of a label's guessed members that must take ionic oxidation states for an ionic card.
IONIC_SHARE = 0.5
#: Elements that make a role an anion site when most members hold one there.
TRUE_ANIONS = frozenset({"O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "H"})
#: Members a card lists as examples (most stable first).
EXAMPLES_PER_CARD = 12


@dataclass(frozen=True)
class Member:
    """One compound of a prototype label, as the data records it.

    Attributes:
        formula: pymatgen reduced formula.
        row_id: row of the OQMD-ICSD db (``ReferenceStructureDB.structure``).
        name: OQMD name, which carries the ICSD collection code ("1-1603-LaF3").
        roles: element on each site role, in the label's order.
        stability: OQMD energy above the hull (eV/atom; negative below the OQMD hull), or None.
        delta_e: OQMD formation energy (eV/atom), or None.
        band_gap: OQMD PBE band gap (eV), or None.
    """

    formula: str
    row_id: int
    name: str
    roles: tuple[str, ...]
    stability: float | None
    delta_e: float | None
    band_gap: float | None


@dataclass(frozen=True)
class PrototypeRecord:
    """One OQMD prototype label with its members and per-role statistics."""

    label: str
    space_group: int
    counts: tuple[int, ...]
    wyckoff: tuple[tuple[str, ...], ...]
    members: tuple[Member, ...]
    oxidation: tuple[dict[str, int], ...]
    oxidation_members: int
    oxidation_guessed: int
    coordination: tuple[int | None, ...] | None = None
    dimensionality: int | None = None
    aflow: tuple[str, ...] = ()

    @property
    def anonymous(self) -> str:
        return self.label.split("_")[0]

    def canonical_roles(self, member: Member) -> tuple[str, ...]:
        """``member.roles`` in the card's order (:func:`canonical_order`)."""
        return tuple(member.roles[i] for i in canonical_order(member.roles, self.counts))

    def anion_share(self, role: int) -> float:
        """Share of the members holding a true anion (O, S, Se, Te, halogen, N, H) on ``role``."""
        if not self.members:
            return 0.0
        return sum(self.canonical_roles(m)[role] in TRUE_ANIONS for m in self.members) / len(self.members)

    @property
    def ionic(self) -> bool:
        """Some role holds a true anion in at least half of the members. Judged on every member, not on
        oxidation guesses of the most stable few: a label such as Pm-3m ABC3 holds oxide perovskites and
        intermetallic antiperovskites alike."""
        return any(self.anion_share(i) >= IONIC_SHARE for i in range(len(self.counts)))

    @property
    def archetype(self) -> Member:
        """The most stable member: the compound a chemist names the type after, as far as data can tell."""
        return self.members[0]


def canonical_order(roles: tuple[str, ...] | list[str], counts: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Which stored role goes to each card role: among roles of equal count, true anions last and
    otherwise by rising Pauling electronegativity (the label's order breaks ties).

    Why: NaCl and MgO sit either way round on the 4a and 4b sites of one label (an origin shift), and
    the ZrCuSiAs label (1111 pnictides) holds LaFeAsO, UCuPO and CuBiSO with their elements on the
    four sites in every order; by Wyckoff letter no card site has one kind of element. By
    electronegativity the electropositive cation (La, U), the transition metal (Fe, Cu), the
    pnictide or chalcogenide and the oxide or fluoride line up for nearly all members.
    Shared with ``scripts/build_prototype_cards.py``, which counts oxidation states in this order."""
    order = list(range(len(roles)))
    for count in set(counts):
        idx = [i for i, c in enumerate(counts) if c == count]
        if len(idx) > 1:
            ranked = sorted(idx, key=lambda i: (roles[i] in TRUE_ANIONS, _electronegativity(roles[i]), i))
            for pos, i in zip(idx, ranked):
                order[pos] = i
    return tuple(order)


@lru_cache(maxsize=256)
def _can_be_anion(symbol: str) -> bool:
    """A common negative oxidation state (pymatgen): Ru or Cu misplaced onto an anion role by the
    electronegativity order (CePRuO) is not offered as an anion."""
    from pymatgen.core import Element

    try:
        return any(ox < 0 for ox in Element(symbol).common_oxidation_states)
    except ValueError:
        return False


@lru_cache(maxsize=256)
def _electronegativity(symbol: str) -> float:
    from pymatgen.core import Element

    try:
        x = Element(symbol).X
    except ValueError:
        return 0.0
    return float(x) if x == x else 0.0  # noble gases have none


def _mean_state(counter: dict[str, int]) -> float:
    n = sum(counter.values())
    return sum(int(k) * v for k, v in counter.items()) / n if n else 0.0


@lru_cache(maxsize=1)
def prototype_records() -> dict[str, PrototypeRecord]:
    """Every derived record by OQMD label (loaded once, about 0.5 s)."""
    try:
        raw = resources.files("genms_pmg.knowledge").joinpath("data/prototype_cards.json.gz").read_bytes()
        doc = json.loads(gzip.decompress(raw))
    except (OSError, ValueError) as exc:
        raise DataUnavailableError(f"the derived prototype cards could not be read ({exc}); reinstall genms or run "
                                   "scripts/build_prototype_cards.py") from None
    if doc.get("version") != _VERSION:
        raise DataUnavailableError(f"prototype_cards.json.gz has version {doc.get('version')}, this code reads "
                                   f"{_VERSION}; run scripts/build_prototype_cards.py")
    out = {}
    for label, r in doc["labels"].items():
        members = tuple(Member(m[0], int(m[1]), m[2], tuple(m[3]), m[4], m[5], m[6]) for m in r["members"])
        out[label] = PrototypeRecord(label, int(r["sg"]), tuple(r["counts"]), tuple(tuple(w) for w in r["wyckoff"]),
                                     members, tuple(r["oxi"]), int(r["oxi_members"]), int(r["oxi_guessed"]),
                                     tuple(r["cn"]) if r.get("cn") else None, r.get("dim"),
                                     tuple(r.get("aflow", ())))
    return out


@lru_cache(maxsize=1)
def _formula_labels() -> dict[str, tuple[str, ...]]:
    by_formula: dict[str, list[tuple[float, str]]] = {}
    for label, rec in prototype_records().items():
        for m in rec.members:
            by_formula.setdefault(m.formula, []).append((m.stability if m.stability is not None else 9.0, label))
    return {f: tuple(lab for _, lab in sorted(v)) for f, v in by_formula.items()}


def labels_of_formula(formula: str, *, space_group: int | None = None) -> tuple[str, ...]:
    """OQMD labels holding ``formula`` (reduced), most stable polymorph first; optionally of one space group."""
    labels = _formula_labels().get(formula, ())
    if space_group is not None:
        labels = tuple(lab for lab in labels if prototype_records()[lab].space_group == space_group)
    return labels


def is_derived_key(key: str | None) -> bool:
    return bool(key) and key.startswith(_PREFIX)


def derived_key(name: str, labels: tuple[str, ...] | list[str]) -> str:
    """The family key of structure type ``name`` with OQMD ``labels`` (variants of one site template)."""
    return f"{_PREFIX}{name}:{'+'.join(labels)}"


def parse_derived_key(key: str) -> tuple[str, tuple[str, ...]]:
    """(name, labels) of a derived key; a clear error for anything else."""
    if not is_derived_key(key) or key.count(":") < 2:
        raise UsageError(f"not a derived structure-type key: {key!r} (they read 'type:<name>:<OQMD label>')")
    name, labels = key[len(_PREFIX):].rsplit(":", 1)
    return name, tuple(labels.split("+"))


def derived_card(key: str) -> FamilyCard:
    """The card of a derived key (cached per key and per set of forgotten formulas)."""
    from genms_pmg.data.forget import forgotten

    return _derived_card(key, forgotten())


@lru_cache(maxsize=256)
def _derived_card(key: str, hidden: frozenset[str]) -> FamilyCard:
    from pymatgen.symmetry.groups import SpaceGroup

    name, labels = parse_derived_key(key)
    records = prototype_records()
    missing = [lab for lab in labels if lab not in records]
    if missing:
        raise UsageError(f"no OQMD prototype {missing[0]!r} in the bundled data; `genms types` lists the known types")
    recs = [records[lab] for lab in labels]
    if len({r.anonymous for r in recs}) > 1:
        raise UsageError(f"the variants of {name!r} have different formula templates "
                         f"({', '.join(r.anonymous for r in recs)}); name one variant")
    base = recs[0]
    members = [m for r in recs for m in r.members if m.formula not in hidden]
    members.sort(key=lambda m: (m.stability if m.stability is not None else 9.0, m.row_id))
    ionic = base.ionic
    sites = []
    anions: list[str] = []
    archetype_order = canonical_order(base.archetype.roles, base.counts)  # stored geometry follows its roles
    for i, count in enumerate(base.counts):
        elements = Counter(r.canonical_roles(m)[i] for r in recs for m in r.members if m.formula not in hidden)
        states: Counter = Counter()
        for r in recs:
            states.update(r.oxidation[i])
        cn = base.coordination[archetype_order[i]] if base.coordination else None
        role = _ROLE_NAMES[i] if i < len(_ROLE_NAMES) else f"S{i}"
        if not ionic:
            sites.append(SiteSpec(role, count, "metal", (), tuple(el for el, _ in elements.most_common()), cn))
            continue
        share = sum(r.anion_share(i) * len(r.members) for r in recs) / max(1, sum(len(r.members) for r in recs))
        negative = sum(v for k, v in states.items() if int(k) < 0)
        positive = sum(v for k, v in states.items() if int(k) > 0)
        # a true anion on most members, or a pnictide/tetrelide the guesses make negative (As in LaFeAsO)
        kind = "anion" if share >= IONIC_SHARE or negative > positive else "cation"
        signed = [int(k) for k, _ in states.most_common() if (int(k) < 0) == (kind == "anion") and int(k) != 0]
        if not signed:
            signed = [-2, -1] if kind == "anion" else [1, 2, 3]
        if kind == "anion":
            found = tuple(el for el, _ in elements.most_common() if _can_be_anion(el))
            anions += [el for el in found if el not in anions]
            sites.append(SiteSpec(role, count, "anion", tuple(signed), found, cn))
        else:
            sites.append(SiteSpec(role, count, "cation", tuple(signed), None, cn))
    symbols = []
    for r in recs:
        try:
            symbols.append(SpaceGroup.from_int_number(r.space_group).symbol)
        except (ValueError, KeyError):  # pragma: no cover - every OQMD group is a real one
            symbols.append(str(r.space_group))
    archetype = _named_archetype(name, {m.formula for m in members}) or (
        members[0].formula if members else base.archetype.formula)
    gaps = [m.band_gap for m in members if m.band_gap is not None]
    template = " ".join(f"{s.role}{s.count if s.count > 1 else ''}" for s in sites)
    notes = (f"derived from {len(members)} OQMD-ICSD members of {', '.join(labels)} ({', '.join(symbols)}); "
             f"archetype {archetype}; template {template}; Wyckoff "
             + "; ".join(f"{s.role}: {''.join(base.wyckoff[j])}" for s, j in zip(sites, archetype_order)))
    from genms_pmg.knowledge.structure_types import display_name

    return FamilyCard(
        key=key, name=f"{display_name(name)} ({archetype}-type, {'/'.join(symbols)})", aliases=(name.lower(),),
        sites=tuple(sites), space_groups=tuple(dict.fromkeys(r.space_group for r in recs)),
        default_anions=tuple(anions), oqmd_prototypes=tuple(labels), aflow_prototypes=_aflow_labels(tuple(labels)),
        examples=tuple(m.formula for m in members[:EXAMPLES_PER_CARD]), notes=notes, intermetallic=not ionic,
        extra={"derived": True, "members": tuple(members), "band_gap_range": (min(gaps), max(gaps)) if gaps else None,
               "dimensionality": base.dimensionality, "type_name": name},
    )


def _aflow_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    """pymatgen AFLOW library prototypes with the same site pattern as ``labels`` (matched at build time)."""
    records = prototype_records()
    return tuple(dict.fromkeys(a for lab in labels for a in records[lab].aflow))


def _named_archetype(name: str, formulas: set[str]) -> str | None:
    """The archetype the user's name stands for ('scheelite' -> CaWO4, 'CaWO4-type' -> CaWO4), when the
    card holds it; the most stable member otherwise stands in."""
    from genms_pmg.data.oqmd import normalize_formula
    from genms_pmg.knowledge.structure_types import names_table, normal_name

    candidates = [name[:-5]] if name.endswith("-type") else []
    candidates += [r.archetype for r in names_table() if r.name == normal_name(name)]
    for text in candidates:
        try:
            formula = normalize_formula(text)
        except UsageError:
            continue
        if formula in formulas:
            return formula
    return None


@lru_cache(maxsize=1)
def labels_by_site_pattern() -> dict[tuple, tuple[str, ...]]:
    """Labels by ``templates.prototype_key`` (space group and sorted (count, Wyckoff letters) per role), most
    members first: the lookup for an AFLOW label or a user's crystal."""
    from genms_pmg.structures.templates import prototype_key

    records = prototype_records()
    out: dict[tuple, list[str]] = {}
    for label in records:
        out.setdefault(prototype_key(label), []).append(label)
    return {k: tuple(sorted(v, key=lambda lab: -len(records[lab].members))) for k, v in out.items()}


def label_of_structure(structure) -> tuple[str | None, str]:
    """(OQMD label, description) of a user's crystal: space group and Wyckoff letters per element by spglib
    (tolerance 0.1, then 0.01 and 0.3 Å), matched against every label of the data; the label is None when
    the data has no such type."""
    described = ""
    for symprec in (0.1, 0.01, 0.3):
        label, text = _label_at(structure, symprec)
        described = described or text
        if label is not None:
            return label, text
    return None, described


def _label_at(structure, symprec: float) -> tuple[str | None, str]:
    from math import gcd
    from functools import reduce

    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
    data = analyzer.get_symmetry_dataset()
    sg = int(analyzer.get_space_group_number())
    wyckoffs = list(getattr(data, "wyckoffs", None) or data["wyckoffs"])
    equivalent = list(getattr(data, "equivalent_atoms", None) if not isinstance(data, dict) else data["equivalent_atoms"])
    letters: dict[str, list[str]] = {}
    for i, site in enumerate(structure):
        if equivalent[i] == i:
            letters.setdefault(site.specie.symbol if hasattr(site.specie, "symbol") else str(site.specie), []).append(wyckoffs[i])
    amounts = structure.composition.get_el_amt_dict()
    g = reduce(gcd, [int(round(a)) for a in amounts.values()])
    counts = [int(round(amounts[el])) // g for el in letters]
    key = (sg, tuple(sorted((c, tuple(sorted(w))) for c, w in zip(counts, letters.values()))))
    described = f"space group {sg}, Wyckoff " + ", ".join(f"{el} {''.join(sorted(w))}" for el, w in letters.items())
    labels = labels_by_site_pattern().get(key, ())
    return (labels[0] if labels else None), described
