"""The default pi_hi: enumerate formulas that fit a family card and rank them by mined chemistry.

No network and no model weights: compositions come from the card's sites (or a generic template),
SMACT's ICSD24 oxidation states and charge neutrality; likelihood is SMACT's oxidation-state pair
probability times how often a species occurs in ICSD, times family geometry (Goldschmidt
tolerance factor, radius ratios, Heusler electron counts). A seeded Gumbel-top-k draw over that
likelihood gives varied but plausible sets, identical for identical seeds.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations, product
from typing import Any

import numpy as np

from genms_pmg.errors import UsageError
from genms_pmg.formulas import chemistry as chem
from genms_pmg.formulas.base import FormulaProposal, FormulaProposer
from genms_pmg.knowledge.families import (
    ANION_CLASSES,
    FAMILIES,
    FamilyCard,
    SiteSpec,
    get_family,
)
from genms_pmg.request import Request

#: Exponent on ICSD species popularity (0 ignores how common an element is).
POPULARITY_EXPONENT = 0.3
#: Species kept per site before combining (required elements are always kept).
SITE_BEAM = 36
#: Log-penalty when the Shannon table lacks the site's coordination for a species.
NO_CN_PENALTY = math.log(0.6)
GENERIC_ANIONS = ("O", "F", "Cl", "S", "N")
#: Known members within this DFT energy above the hull (eV/atom; the search's calibrated bound)
#: count as stable and are listed most-studied first (entries in the bundled indexes).
KNOWN_STABLE_E_HULL = 0.025
#: First words of a known member's first reason (``propose`` keeps them all, in order).
KNOWN_REASON = "known"
#: Log-prior of a generic template when the request names a space group some family takes.
SPACE_GROUP_GENERIC_LOGP = math.log(0.2)
#: Log-prior per extra cation kind in a generic template (simpler formulas first).
EXTRA_SITE_LOGP = math.log(0.5)
_ANION_LIKE = frozenset(el for els, _ in ANION_CLASSES.values() for el in els) | {"As"}

#: Generic (cation counts..., anion count) templates used without a family or ratio.
GENERIC_IONIC = ((1, 1), (1, 2), (2, 1), (2, 3), (1, 3), (3, 1), (3, 2), (3, 4),
                 (1, 1, 2), (1, 1, 3), (1, 2, 4), (2, 1, 4), (1, 1, 4), (2, 1, 3), (2, 2, 7))
GENERIC_METALLIC = ((1, 1), (1, 2), (1, 3), (2, 3), (1, 1, 1), (1, 1, 2))


@dataclass(frozen=True)
class _Species:
    symbol: str
    ox: int
    logp: float
    radius: float | None
    pp: float | None = None
    tabulated: bool = False


@dataclass(frozen=True)
class _Template:
    family: str | None
    sites: tuple[SiteSpec, ...]
    prior: float = 0.0  # log prior of the template itself


class _TopK:
    """The k best log-likelihoods seen so far; its floor bounds the search."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[float] = []
        self.pruned = False

    def floor(self) -> float:
        return self.heap[0] if len(self.heap) >= self.k else -math.inf

    def push(self, value: float) -> None:
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, value)
        elif value > self.heap[0]:
            heapq.heapreplace(self.heap, value)


def _ion(symbol: str, ox: int) -> str:
    if ox == 0:
        return symbol
    return f"{symbol}{'' if abs(ox) == 1 else abs(ox)}{'+' if ox > 0 else '-'}"


def _card_template(card: FamilyCard) -> _Template:
    return _Template(card.key, card.sites)


def _ionic_template(counts: tuple[int, ...]) -> _Template:
    cations = tuple(SiteSpec("ABC"[i], c, "cation") for i, c in enumerate(counts[:-1]))
    return _Template(None, (*cations, SiteSpec("X", counts[-1], "anion")), EXTRA_SITE_LOGP * (len(counts) - 2))


def _metal_template(counts: tuple[int, ...]) -> _Template:
    sites = tuple(SiteSpec("ABC"[i], c, "metal") for i, c in enumerate(counts))
    return _Template(None, sites, EXTRA_SITE_LOGP * (len(counts) - 1))


def _reduced_ratio(counts: Iterable[int]) -> tuple[int, ...]:
    counts = list(counts)
    g = math.gcd(*counts)
    return tuple(sorted(c // g for c in counts))


@dataclass(frozen=True)
class _Rules:
    """What one request allows, hashable so the site look-ups can be cached across calls."""

    excluded: frozenset[str]
    required: frozenset[str]
    any_of: frozenset[str] = frozenset()  # anion-class elements an anion-less template must use


class OfflineFormulaProposer(FormulaProposer):
    """Deterministic, data-mined pi_hi (see module docstring).

    ``propose`` keeps the ``greedy_fraction`` most likely formulas (so classics such as MgAl2O4
    are never lost to noise) and fills the rest by a Gumbel-top-k draw, without replacement and
    weighted by likelihood, from the best ``pool_factor * n`` (at least 30) candidates.

    Args:
        known_index: object with ``is_known(formula, sources=...)`` used for ``request.novel``;
            defaults to ``KnownFormulaIndex.default()`` the first time it is needed.
        temperature: scale of the Gumbel noise on log-likelihood (0 gives the plain top-n).
        pool_factor: size of the candidate pool per requested formula.
        greedy_fraction: share of ``n`` (rounded up) taken in likelihood order before drawing.
        substitution_weight: weight of the ion-substitution likelihood from the family's known
            members (0 switches it off).
        known_first: list the family's known members from the bundled data first when novelty is
            not asked, and add substitutions of them (False: the plain enumeration).
    """

    name = "offline"

    def __init__(
        self, *, known_index: Any = None, temperature: float = 1.0, pool_factor: int = 4,
        greedy_fraction: float = 0.5, substitution_weight: float = 1.0, known_first: bool = True,
    ) -> None:
        self._known_index = known_index
        self.temperature = temperature
        self.pool_factor = pool_factor
        self.greedy_fraction = greedy_fraction
        self.substitution_weight = substitution_weight
        self.known_first = known_first

    # -- public -----------------------------------------------------------------------------
    def propose(
        self, request: Request, *, n: int, seed: int = 0, exclude: Collection[str] = ()
    ) -> list[FormulaProposal]:
        """Return up to ``n`` proposals, best first; [] when nothing fits the request.

        ``prior`` is each formula's likelihood over that of the most likely formula not excluded.
        """
        if n <= 0:
            return []
        pool = self.candidates(request, limit=max(self.pool_factor * n, 30), exclude=exclude)
        if not pool:
            return []
        logl = np.log(np.maximum([c.prior for c in pool], 1e-300))
        known = sum(1 for c in pool if c.reasons and c.reasons[0].startswith(KNOWN_REASON))
        head = min(len(pool), n, max(known, math.ceil(self.greedy_fraction * n)))  # known members all first
        chosen = list(range(head))
        if self.temperature > 0 and len(pool) > n:
            keys = logl[head:] / self.temperature + np.random.default_rng(seed).gumbel(size=len(pool) - head)
            chosen += sorted((head + np.argsort(-keys, kind="stable")[: n - head]).tolist())
        else:
            chosen = list(range(min(n, len(pool))))
        return [FormulaProposal(
            formula=pool[i].formula, family=pool[i].family, oxidation_states=pool[i].oxidation_states,
            prior=float(pool[i].prior), proposer=self.name, reasons=pool[i].reasons) for i in chosen]

    def candidates(
        self, request: Request, *, limit: int = 50, exclude: Collection[str] = ()
    ) -> list[FormulaProposal]:
        """The ``limit`` most likely formulas in order; ``prior`` is likelihood over the best one's."""
        if request.required_any:
            return self._any_of_candidates(request, limit=limit, exclude=exclude)
        templates, notes = self._templates(request)
        if not templates:
            return []
        classes = {el for c in request.anion_classes for el in ANION_CLASSES.get(c, ((), 0))[0]}
        rules = _Rules(frozenset(request.forbidden_elements()), frozenset(request.required_elements), frozenset(classes))
        excluded = {f for f in (chem.reduced_formula(x) for x in [*exclude, *request.avoid_formulas]) if f}
        alloys = any(t.family and get_family(t.family).intermetallic for t in templates) or bool(request.metallic)
        family = templates[0].family if request.family else None
        keep = 4 * limit + 40
        while True:
            top = _TopK(keep)
            scored = [(logl, tuple((sp.symbol, site.count) for site, sp in combo), combo, extra)
                      for template in templates for anions in self._anions(request, template)
                      for logl, combo, extra in self._combine(template, anions, rules, top)]
            if family is not None and self.substitution_weight > 0:
                scored = self._with_substitution(family, scored)
            scored.sort(key=lambda item: (-item[0], item[1]))
            out: list[FormulaProposal] = []
            seen: set[str] = set()
            for logl, key, combo, extra in scored:
                formula = chem.reduced_formula("".join(f"{el}{c}" for el, c in key))
                if formula is None or formula in seen or formula in excluded:
                    continue
                seen.add(formula)
                if not chem.is_charge_neutral(formula, alloys=alloys) or not self._novel_ok(request, formula):
                    continue
                states = {sp.symbol: float(sp.ox) for _, sp in combo if sp.ox}  # none for intermetallics
                out.append(FormulaProposal(
                    formula=formula, family=family, oxidation_states=states,
                    prior=logl, proposer=self.name, reasons=_reasons(combo, extra, notes, family=family)))
                if len(out) >= limit:
                    break
            if len(out) >= limit or not top.pruned:
                break
            keep *= 4  # filters removed too many of the kept combinations: search wider
        best = out[0].prior if out else 0.0
        for p in out:
            p.prior = math.exp(p.prior - best)
        if family is not None and self.known_first:
            out = self._with_data(request, family, out, excluded, alloys=alloys, limit=limit)
        return out

    def _with_data(self, request: Request, family: str, enumerated: list[FormulaProposal], excluded: set[str],
                   *, alloys: bool, limit: int) -> list[FormulaProposal]:
        """Known members first (unless novelty is asked), then enumerated formulas merged with
        substitutions of known members (which keep mixed-valence sites), by prior.

        Why: the bundled data knows the family's real compounds; a chemist lists those before
        inventing, and invents by swapping an ion of a real one.
        """
        from genms_pmg.knowledge.members import known_members, substitutions

        card = get_family(family)
        # radioactive and noble-gas elements are never proposed unless asked for by name (BaPuO3 is known)
        forbidden = set(request.forbidden_elements()) | (set(chem.EXCLUDED_ELEMENTS) - set(request.required_elements))
        known: list[FormulaProposal] = []
        if not request.novel:
            members = [m for m in known_members(family)
                       if _fits(request, card, m.species, forbidden) and chem.is_charge_neutral(m.formula, alloys=alloys)
                       and (m.space_group is None or not request.space_group or m.space_group == request.space_group)]
            order = {el: i for i, el in enumerate(card.default_anions)}

            def tier(m) -> int:  # the card's usual anions first when the user named none
                if request.anion_classes or not order:
                    return 0
                return min((order.get(el, len(order)) for _, el, ox in m.species if ox < 0), default=len(order))

            index = self._index()

            def attention(m) -> int:  # entries in the bundled indexes: polymorphs and orderings studied
                return sum(len(ids) for ids in index.sources_of(m.formula).values())

            def stable(m) -> bool:
                return m.e_above_hull is not None and m.e_above_hull <= KNOWN_STABLE_E_HULL

            members.sort(key=lambda m: (tier(m), not stable(m), -attention(m) if stable(m) else 0,
                                        m.e_above_hull if m.e_above_hull is not None else math.inf,
                                        not m.verified, m.formula))
            for i, m in enumerate(members):  # ranks fixed before exclusion: asking again keeps the order
                if m.formula in excluded:
                    continue
                if len(known) >= limit:
                    break
                hull = (f"{m.hull_source} E_hull {m.e_above_hull:+.3f} eV/atom" if m.e_above_hull is not None
                        else "no DFT hull distance in the bundled data")
                what = KNOWN_REASON
                known.append(FormulaProposal(
                    formula=m.formula, family=family, oxidation_states=_states(m.species), prior=1.0 - 1e-3 * i,
                    proposer=self.name, reasons=[f"{what} {card.key.replace('_', ' ')}: {m.evidence}", hull,
                                                 _species_line(m.species)]))
        taken = {p.formula for p in known}
        pool = sorted({el for el in chem.cation_pool()} | {el for el in card.default_anions} | set(request.required_elements))
        subs: list[FormulaProposal] = []
        found = [x for x in substitutions(family, elements=pool) if x.formula not in taken and x.formula not in excluded]
        best = found[0].probability if found else 1.0
        anions = None if request.anion_classes or not card.default_anions else set(card.default_anions) | set(request.required_elements)
        for x in found:
            if len(subs) >= SUBSTITUTION_POOL * limit:
                break
            if anions is not None and any(ox < 0 and el not in anions for _, el, ox in x.species):
                continue  # no anion named: the card's usual anions, as the enumeration uses
            if not _fits(request, card, x.species, forbidden) or not chem.is_charge_neutral(x.formula, alloys=alloys):
                continue
            if not self._novel_ok(request, x.formula):
                continue
            subs.append(FormulaProposal(
                formula=x.formula, family=family, oxidation_states=_states(x.species),
                prior=self.substitution_weight and (x.probability / best) ** self.substitution_weight or 1e-3,
                proposer=self.name, reasons=[f"ion substitution of {x.source} ({x.swap}, p={x.probability:.2g})",
                                             _species_line(x.species)]))
        merged: dict[str, FormulaProposal] = {}
        for p in [*enumerated, *subs]:
            if p.formula in taken:
                continue
            if p.formula not in merged or merged[p.formula].prior < p.prior:
                merged[p.formula] = p
        rest = self._by_evidence(family, list(merged.values()))
        if known:  # invented formulas after every known member, their relative priors kept
            floor = known[-1].prior * 0.5
            for p in rest:
                p.prior *= floor
        return [*known, *rest][:limit]

    def _by_evidence(self, family: str, proposals: list[FormulaProposal]) -> list[FormulaProposal]:
        """Invented formulas ordered by :func:`_family_evidence` (summed over the family's known members),
        the prior becoming ``(evidence / best) ** substitution_weight``; the old prior breaks ties.

        Why: enumeration and single-path substitution priors put anion swaps of one member on top;
        hidden real members are the formulas many stable members support (issue 20, rediscovery)."""
        from pymatgen.core import Composition

        members = _family_members(family)
        if not members or not proposals or self.substitution_weight <= 0:
            return sorted(proposals, key=lambda p: (-p.prior, p.formula))
        scored = []
        for p in proposals:
            amounts = Composition(p.formula).get_el_amt_dict()
            target = [("", int(round(n)), el, _charge(p.oxidation_states.get(el, 0.0))) for el, n in amounts.items()]
            evidence, source = _family_evidence(target, members)
            scored.append((evidence, p, source))
        best = max(e for e, _, _ in scored)
        if best <= 0:
            return sorted(proposals, key=lambda p: (-p.prior, p.formula))
        scored.sort(key=lambda t: (-t[0], -t[1].prior, t[1].formula))
        out = []
        for evidence, p, source in scored:
            p.prior = max(evidence / best, 1e-6) ** self.substitution_weight
            if source and not any(r.startswith("family evidence") for r in p.reasons):
                p.reasons = [*p.reasons, f"family evidence {evidence:.3g} (strongest: {source})"]
            out.append(p)
        return out

    def _any_of_candidates(self, request: Request, *, limit: int, exclude: Collection[str]) -> list[FormulaProposal]:
        """'Li or Na': one search per choice (each required in turn), merged by likelihood.

        Priors are relative within each choice, so the best formula of every choice has prior 1
        and the choices interleave.
        """
        from dataclasses import replace

        merged: dict[str, FormulaProposal] = {}
        known_first, self.known_first = self.known_first, False  # known members once, below, not per choice
        try:
            for choice in product(*request.required_any):
                if set(choice) & (set(request.forbidden_elements()) | (chem.EXCLUDED_ELEMENTS - set(request.required_elements))):
                    continue  # an excluded element, or a radioactive one that only a group named
                variant = replace(request, required_any=[],
                                  required_elements=list(dict.fromkeys([*request.required_elements, *choice])))
                for p in self.candidates(variant, limit=limit, exclude=exclude):
                    if p.formula not in merged or merged[p.formula].prior < p.prior:
                        merged[p.formula] = p
        finally:
            self.known_first = known_first
        out = sorted(merged.values(), key=lambda p: (-p.prior, p.formula))[:limit]
        if request.family and self.known_first:
            excluded = {f for f in (chem.reduced_formula(x) for x in [*exclude, *request.avoid_formulas]) if f}
            alloys = get_family(request.family).intermetallic or bool(request.metallic)
            out = self._with_data(request, request.family, out, excluded, alloys=alloys, limit=limit)
        return out

    # -- templates and anions --------------------------------------------------------------------
    def _templates(self, request: Request) -> tuple[list[_Template], list[str]]:
        notes: list[str] = []
        max_atoms = request.max_atoms
        if request.family:
            card = get_family(request.family)
            if request.atom_ratio and _reduced_ratio(request.atom_ratio) != _reduced_ratio(card.ratio):
                return [], notes
            if request.metallic and not card.intermetallic:
                notes.append("metallic request ignored: ionic family")
            elif request.metallic is False and card.intermetallic:
                notes.append("non-metal request ignored: intermetallic family")
            templates = [_card_template(c) for c in _mixed_anion_cards(_with_site_elements(card, request), request)]
        else:
            wants_anion = bool(request.anion_classes) or any(e in _ANION_LIKE for e in request.required_elements)
            metallic = bool(request.metallic) and not wants_anion
            if request.metallic and wants_anion:
                notes.append("metallic request ignored: anions asked for")
            if request.atom_ratio:
                ratio = tuple(request.atom_ratio)
                if metallic:
                    templates = [_metal_template(p) for p in sorted(set(permutations(ratio)))]
                else:
                    templates = [_ionic_template(p) for p in sorted(set(permutations(ratio)))]
            else:
                shapes = GENERIC_METALLIC if metallic else GENERIC_IONIC
                make = _metal_template if metallic else _ionic_template
                templates = [make(s) for s in shapes]
            if request.space_group and not request.atom_ratio:
                # families that take the asked-for space group come first (221: perovskite, CsCl, ...)
                cards = [c for c in FAMILIES.values()
                         if request.space_group in c.space_groups and c.intermetallic == metallic]
                if cards:
                    notes.append(f"families in space group {request.space_group}: "
                                 + ", ".join(c.key for c in cards))
                    templates = [_card_template(c) for c in cards] + [
                        _Template(t.family, t.sites, t.prior + SPACE_GROUP_GENERIC_LOGP) for t in templates]
        if not request.family and len([el for el in request.required_elements if el in _ANION_LIKE]) == 2:
            split = []
            for t in templates:  # generic X2 -> X X', X3 -> X2 X' and X X2', ...: both anions placed
                split += [_Template(t.family, c.sites, t.prior) for c in _mixed_anion_cards(
                    FamilyCard(key="", name="", aliases=(), sites=t.sites, space_groups=()), request)
                    if any(s.role.endswith("'") for s in c.sites)]
            templates = split
        if max_atoms is not None:
            templates = [t for t in templates if sum(s.count for s in t.sites) <= max_atoms]
        return templates, notes

    def _anions(self, request: Request, template: _Template) -> list[tuple[tuple[str, int], ...] | None]:
        """Anion choices: one (element, state) per anion site in template order; [None] without any.

        One anion site takes the asked-for anion classes, else the card's default anions. Several
        anion sites (antiperovskite X3BA) take those or their own listed elements, distinct, with at
        least one site in an asked-for class.
        """
        sites = [s for s in template.sites if s.kind == "anion"]
        if not sites:
            return [None]
        asked: list[tuple[str, int | None]] = []
        if request.anion_classes:
            unknown = [c for c in request.anion_classes if c not in ANION_CLASSES]
            if unknown:
                raise UsageError(f"unknown anion class {unknown[0]!r}; known: {', '.join(ANION_CLASSES)}")
            asked = [(el, ANION_CLASSES[c][1]) for c in request.anion_classes for el in ANION_CLASSES[c][0]]
        required = tuple(e for e in request.required_elements if e in _ANION_LIKE)
        if template.family:
            defaults = get_family(template.family).default_anions + required
        else:
            defaults = required or GENERIC_ANIONS
        default_pairs = [(el, chem.anion_oxidation_state(el)) for el in defaults]
        if len(sites) == 1:
            return [(pair,) for pair in _fit_anions(asked or default_pairs, sites[0], request.forbidden_elements())]
        options = [_fit_anions(asked + default_pairs + [(el, chem.anion_oxidation_state(el)) for el in site.elements or ()],
                               site, request.forbidden_elements()) for site in sites]
        wanted = {el for el, _ in asked}
        return [choice for choice in product(*options)
                if len({el for el, _ in choice}) == len(choice) and (not wanted or wanted & {el for el, _ in choice})]

    # -- combination -----------------------------------------------------------------------------
    def _combine(self, template: _Template, anions: tuple[tuple[str, int], ...] | None, rules: _Rules, top: _TopK):
        """Yield (log-likelihood, ((site, species), ...), reasons) for charge-neutral fillings.

        ``anions`` holds one (element, state) per anion site; the first is the one cation likelihoods
        are taken against. Branch and bound: site lists are sorted best first and every factor is
        <= 1, so a branch whose best completion cannot reach the ``top`` heap's floor is cut.
        """
        cat_sites = [s for s in template.sites if s.kind != "anion"]
        an_sites = [s for s in template.sites if s.kind == "anion"]
        anion = anions[0] if anions else None
        an_elements = {el for el, _ in anions} if anions else set()
        required = set(rules.required) - an_elements
        pools = set().union(*(s.elements if s.elements is not None else chem.cation_pool() for s in cat_sites))
        any_of = rules.any_of if anion is None else frozenset()
        if len(required) > len(cat_sites) or required - pools or (any_of and not any_of & pools):
            return  # a required element (or asked-for anion) fits neither this anion nor any site
        lists = [_site_species(template.family, site, anion, rules) for site in cat_sites]
        if not lists or any(not lst for lst in lists):
            return  # no cation site (a derived card read every site as an anion) or an empty site
        rest_best = [sum(lst[0].logp for lst in lists[i:]) for i in range(len(lists) + 1)]
        target = -sum(ox * site.count for (_, ox), site in zip(anions, an_sites)) if anions else 0
        by_ox: dict[int, list[_Species]] = {}
        for sp in lists[-1]:
            by_ox.setdefault(sp.ox, []).append(sp)
        an_species = [_Species(el, ox, 0.0, chem.shannon_radius(el, ox, 6)[0]) for el, ox in anions or ()]
        n = len(lists)
        roles = [(site.role, site.count) for site in cat_sites]
        r_x = an_species[0].radius if an_species else None

        def rec(i: int, chosen: list[_Species], charge: int, logp: float):
            if i == n - 1:
                options = lists[-1]
                if anion:
                    rest = target - charge
                    if rest % cat_sites[-1].count:
                        return
                    options = by_ox.get(rest // cat_sites[-1].count, [])
                for sp in options:
                    if logp + sp.logp < top.floor():
                        top.pruned = True
                        return
                    yield from finish([*chosen, sp], logp + sp.logp)
                return
            for sp in lists[i]:
                if logp + sp.logp + rest_best[i + 1] < top.floor():
                    top.pruned = True
                    return
                if all(sp.symbol != c.symbol for c in chosen):
                    yield from rec(i + 1, [*chosen, sp], charge + sp.ox * cat_sites[i].count, logp + sp.logp)

        def finish(chosen: list[_Species], logp: float):
            symbols = {c.symbol for c in chosen}
            if len(symbols) < n or symbols & an_elements or not required <= symbols or (any_of and not any_of & symbols):
                return
            factor, extra = chem.family_factor(template.family, roles, [(c.symbol, c.radius) for c in chosen], r_x)
            total = logp + template.prior + math.log(max(factor, 1e-300))
            if total < top.floor():
                top.pruned = True
                return
            top.push(total)
            yield total, (*zip(cat_sites, chosen), *zip(an_sites, an_species)), extra

        yield from rec(0, [], 0, template.prior)

    def _with_substitution(self, family: str, scored: list) -> list:
        """Add ``substitution_weight * log(P / P_best)`` to each log-likelihood, where P is the
        data-mined probability (pymatgen's SubstitutionProbability, Hautier et al. 2011) that the
        candidate arises from a well-known member of the family by substituting ions site by site.

        Why: family members are made by swapping ions of known members; candidates one likely swap
        away from a real compound rank above chemically legal but unprecedented fillings.
        """
        members = () if get_family(family).intermetallic else _family_members(family)
        if not members:
            return scored
        probs = []
        for _, _, combo, _ in scored:
            target = [(site.role, site.count, sp.symbol, sp.ox) for site, sp in combo]
            probs.append(_family_evidence(target, members))
        best = max((p for p, _ in probs), default=0.0)
        if best <= 0:
            return scored
        out = []
        for (logl, key, combo, extra), (prob, source) in zip(scored, probs):
            term = self.substitution_weight * math.log(max(prob, best * 1e-4) / best)
            note = [f"ion substitution of {source} (p={prob:.2g})"] if source else []
            out.append((logl + term, key, combo, [*extra, *note]))
        return out

    def _index(self):
        if self._known_index is None:
            from genms_pmg.data.known import KnownFormulaIndex

            self._known_index = KnownFormulaIndex.default()
        return self._known_index

    def _novel_ok(self, request: Request, formula: str) -> bool:
        if not request.novel:
            return True
        from genms_pmg.data.known import novelty_sources

        return not self._index().is_known(formula, sources=novelty_sources(request))


def _states(species) -> dict[str, float]:
    return {el: float(ox) for _, el, ox in species if ox}


def _species_line(species) -> str:
    def fmt(el: str, ox: float) -> str:
        if abs(ox - round(ox)) > 1e-3:
            return f"{el}{abs(ox):g}{'+' if ox > 0 else '-'} (mixed valence)"
        return _ion(el, int(round(ox)))

    return ", ".join(fmt(el, ox) for _, el, ox in species)


def _fits(request: Request, card: FamilyCard, species, forbidden: set[str]) -> bool:
    """Whether a formula given as (count, element, state) meets the request's element rules."""
    from genms_pmg.knowledge.members import site_roles

    present = {el for _, el, _ in species}
    if not set(request.required_elements) <= present or present & forbidden:
        return False
    if any(not set(group) & present for group in request.required_any):
        return False
    if request.anion_classes:
        asked = {el for c in request.anion_classes for el in ANION_CLASSES.get(c, ((), 0))[0]}
        if not asked & {el for _, el, ox in species if ox < 0}:
            return False
    if request.max_atoms is not None and sum(c for c, _, _ in species) > request.max_atoms:
        return False
    wanted = getattr(request, "site_elements", None) or {}
    if wanted:
        roles = site_roles(species, card)
        if roles is None:
            return False
        for key, allowed in wanted.items():
            role = _site_role(card, key)
            if role is not None and roles.get(role) not in set(allowed):
                return False
    return True


def _mixed_anion_cards(card: FamilyCard, request: Request) -> list[FamilyCard]:
    """The card, or, when the request requires two anions (an oxynitride), the card with its anion
    site split between them in every integer share (ABO2N and ABON2 for a perovskite's X3)."""
    from dataclasses import replace

    wanted = [el for el in request.required_elements if el in _ANION_LIKE]
    anion_sites = [s for s in card.sites if s.kind == "anion"]
    if len(wanted) != 2 or len(anion_sites) != 1 or anion_sites[0].count < 2:
        return [card]
    site = anion_sites[0]
    out = []
    for k in range(1, site.count):
        for first, second in (wanted, wanted[::-1]):
            split = (replace(site, count=site.count - k, elements=(first,), oxidation_states=()),
                     replace(site, role=site.role + "'", count=k, elements=(second,), oxidation_states=()))
            sites = tuple(x for s in card.sites for x in (split if s is site else (s,)))
            out.append(replace(card, sites=sites))
    unique = {tuple((s.count, s.elements) for s in c.sites): c for c in out}
    return list(unique.values())


def _with_site_elements(card: FamilyCard, request: Request) -> FamilyCard:
    """The card with each site the request pins ("barium on the A site") limited to those elements."""
    from dataclasses import replace

    wanted = getattr(request, "site_elements", None) or {}
    if not wanted:
        return card
    limits: dict[str, set[str]] = {}
    for key, allowed in wanted.items():
        role = _site_role(card, key)
        if role is not None:
            limits[role] = limits.get(role, set(allowed)) & set(allowed)
    sites = tuple(replace(s, elements=tuple(sorted(limits[s.role] & set(s.elements) if s.elements else limits[s.role])))
                  if s.role in limits else s for s in card.sites)
    return replace(card, sites=sites)


def _site_role(card: FamilyCard, key: str) -> str | None:
    """The card role a site key names: a role letter, or a coordination word (tetrahedral -> CN 4)."""
    if any(s.role == key for s in card.sites):
        return key
    cn = {"tetrahedral": 4, "octahedral": 6, "cubic": 8, "8-fold": 8, "12-fold": 12, "linear": 2}.get(key.lower())
    matches = [s.role for s in card.sites if cn is not None and s.coordination == cn and s.kind != "anion"]
    return matches[0] if len(matches) == 1 else None


def _fit_anions(pairs: Iterable[tuple[str, int | None]], site: SiteSpec,
                excluded: Collection[str]) -> list[tuple[str, int]]:
    """The (element, state) pairs an anion site takes, in order, without repeats.

    A pair's state must be one the site allows; a site that lists its elements also states their
    chemistry, so there an element takes the site's state when ICSD24 knows it (S as S2(2-) in
    pyrite: -1; As in the As4(4-) rings of skutterudite: -1).
    """
    out: list[tuple[str, int]] = []
    for el, ox in dict.fromkeys(pairs):
        if ox is None or el in excluded or (site.elements and el not in site.elements):
            continue
        if site.oxidation_states and ox not in site.oxidation_states:
            if not site.elements:
                continue
            ox = next((s for s in site.oxidation_states if s in chem.oxidation_states(el)), None)
            if ox is None:
                continue
        out.append((el, ox))
    return list(dict.fromkeys(out))


@lru_cache(maxsize=512)
def _site_species(
    family: str | None, site: SiteSpec, anion: tuple[str, int] | None, rules: _Rules
) -> tuple[_Species, ...]:
    """Candidate species for one site, best first; cached per site, anion and rules."""
    pool = site.elements if site.elements is not None else chem.cation_pool()
    window = chem.SITE_WINDOWS.get(family or "", {}).get(site.role)
    out: list[_Species] = []
    x_en = chem.electronegativity(anion[0]) if anion else None
    r_x = chem.shannon_radius(anion[0], anion[1], 6)[0] if anion else None
    for el in pool:
        if el in rules.excluded or el in chem.EXCLUDED_ELEMENTS or (anion and el == anion[0]):
            continue
        if site.kind == "metal":
            out.append(_Species(el, 0, POPULARITY_EXPONENT * math.log(chem.popularity(el, 0)), None))
            continue
        en = chem.electronegativity(el)
        if x_en is not None and en is not None and en >= x_en:
            continue  # Pauling test: a cation must be less electronegative than the anion
        for ox in chem.oxidation_states(el):
            if ox <= 0 or (site.oxidation_states and ox not in site.oxidation_states):
                continue
            if anion:
                pp, tab = chem.pair_probability(el, ox, anion[0], anion[1])
            else:
                pp, tab = chem.oxidation_share(el, ox), False
            if pp <= 0:
                continue
            logp = math.log(pp) + POPULARITY_EXPONENT * math.log(chem.popularity(el, ox))
            radius, exact = chem.shannon_radius(el, ox, site.coordination)
            if site.coordination is not None and not exact:
                logp += NO_CN_PENALTY
            if window is not None:
                ratio = radius / r_x if radius and r_x else None
                logp += math.log(chem.window(ratio, *window, 0.08))
            out.append(_Species(el, ox, logp, radius, pp, tab))
    out.sort(key=lambda s: (-s.logp, s.symbol, s.ox))
    keep = out[:SITE_BEAM] + [s for s in out[SITE_BEAM:] if s.symbol in rules.required]
    return tuple(keep)


def _reasons(combo, extra: list[str], notes: list[str], *, family: str | None) -> list[str]:
    parts = []
    for site, sp in combo:
        geo = chem.GEOMETRY.get(site.coordination or 0)
        label = f"{site.role}, {geo}" if geo else site.role
        bare = family is None or site.kind == "anion"  # generic templates have no real roles
        parts.append(_ion(sp.symbol, sp.ox) + ("" if bare else f" ({label})"))
    reasons = [", ".join(parts), *extra]
    anion = next((sp for site, sp in combo if site.kind == "anion"), None)
    for site, sp in combo:
        if anion and site.kind == "cation" and sp.pp is not None:
            src = "" if sp.tabulated else " (ICSD share)"
            reasons.append(f"P({_ion(sp.symbol, sp.ox)}|{_ion(anion.symbol, anion.ox)})={sp.pp:.2f}{src}")
    return reasons + notes


def _family_members(family: str) -> tuple[tuple[str, tuple[tuple[int, str, float], ...]], ...]:
    """Sources of the substitution prior: the family's verified members in the bundled data (most
    stable first) and the card's examples, as (formula, ((count, element, oxidation state), ...));
    mixed-valence members keep their average state. Forgotten formulas are left out."""
    from genms_pmg.data.forget import forgotten

    return _members_cached(family, forgotten())


@lru_cache(maxsize=64)
def _members_cached(family: str, hidden: frozenset[str]):
    from pymatgen.core import Composition

    from genms_pmg.knowledge.members import (
        SOURCES_PER_FAMILY,
        known_members,
        oxidation_guess,
    )

    out = {m.formula: (m.species, _stability_weight(m.e_above_hull))
           for m in known_members(family, listed=False)[:SOURCES_PER_FAMILY]}
    for example in get_family(family).examples:
        reduced = Composition(example).reduced_formula
        if reduced not in hidden and reduced not in out and (species := oxidation_guess(reduced)) is not None:
            out[reduced] = (species, 1.0)
    return tuple((formula, species, weight) for formula, (species, weight) in out.items())


def _charge(ox: float) -> float | int:
    """An integer charge as int (the substitution table's species), a mixed-valence one as it is."""
    return int(round(ox)) if abs(ox - round(ox)) < 1e-3 else ox


#: Substitutions of known members considered per wanted formula before ranking by family evidence.
SUBSTITUTION_POOL = 4

#: eV/atom: a source member this far above the hull counts 1/e as much as one on it.
STABILITY_SCALE = 0.05


def _stability_weight(e_above_hull: float | None) -> float:
    """Weight of a known member as evidence: 1 on the hull, falling off above it (1 when unknown)."""
    return 1.0 if e_above_hull is None else math.exp(-max(e_above_hull, 0.0) / STABILITY_SCALE)


@lru_cache(maxsize=262144)
def _pair_probability(new: str, new_ox: int, old: str, old_ox: float) -> float:
    """pymatgen's conditional substitution probability of one site; a fractional (mixed-valence)
    source charge averages the two integer charges around it; unseen species give 0."""
    from pymatgen.core import Species

    table = chem.substitution_table()
    states = {math.floor(old_ox), math.ceil(old_ox)} if abs(old_ox - round(old_ox)) > 1e-3 else {int(round(old_ox))}
    total = 0.0
    for s in states:
        try:
            total += table.cond_prob(Species(new, new_ox), Species(old, s))
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    return total / len(states)


@lru_cache(maxsize=65536)
def _consistent_orders(species: tuple, shape: tuple[tuple[int, bool], ...]) -> tuple[tuple, ...]:
    """Orders of a member's species whose counts and charge signs match a target's sites, cached:
    thousands of candidates share a few shapes, and most permutations never match."""
    if len(species) != len(shape):
        return ()
    return tuple(dict.fromkeys(perm for perm in permutations(species)
                               if all(c == n and (ox > 0) == positive
                                      for (c, _, ox), (n, positive) in zip(perm, shape))))


def _family_evidence(target: list[tuple[str, int, str, int]], members) -> tuple[float, str]:
    """Evidence that ``target`` is a real member: the sum over known members of
    stability weight x P(target | member) (pymatgen's site-by-site substitution probability, best
    count-consistent site assignment per member), with the strongest single source as the reason.

    Why a sum (Hautier et al. 2011 sum over the known compounds of a structure type): a formula one
    likely swap from many stable members (HoVO4 beside a dozen rare-earth vanadates) is better
    supported than one anion swap of a single member (S -> Se), which the best source alone cannot
    tell apart. Site-conditioned: a member counts only through a swap on the same site.
    """
    table = _shape_table(tuple(members), tuple((t[1], t[3] > 0) for t in target))
    if not table.perms:
        return 0.0, ""
    p = table.weights.copy()
    for position, t in enumerate(target):
        p *= table.column(position, t[2], t[3])
    tops = np.zeros(len(table.formulas))
    np.maximum.at(tops, table.owner, p)
    total = sum(tops.tolist())  # in member order, as a running sum
    row = int(np.argmax(p))
    if p[row] <= 0:
        return total, ""
    swaps = [f"{el}{ox:+g}->{t[2]}{t[3]:+g}" for (_, el, ox), t in zip(table.perms[row], target) if el != t[2]]
    return total, f"{table.formulas[table.owner[row]]}" + (f" ({', '.join(swaps)})" if swaps else " (itself)")


class _ShapeTable:
    """Every (member, site order) row for one target shape, with per-site columns of pair probabilities
    cached by the element put there: an enumeration scores hundreds of targets that share most sites."""

    def __init__(self, rows: tuple) -> None:
        self.formulas = tuple(formula for formula, _, _ in rows)
        self.perms = tuple(perm for _, orders, _ in rows for perm in orders)
        self.owner = np.array([i for i, (_, orders, _) in enumerate(rows) for _ in orders], dtype=int)
        self.weights = np.array([w for _, orders, w in rows for _ in orders], dtype=float)
        self._columns: dict[tuple[int, str, float], np.ndarray] = {}

    def column(self, position: int, element: str, ox: float) -> np.ndarray:
        key = (position, element, ox)
        if key not in self._columns:
            self._columns[key] = np.array([_pair_probability(element, ox, perm[position][1], perm[position][2])
                                           for perm in self.perms], dtype=float)
        return self._columns[key]


@lru_cache(maxsize=1024)
def _shape_table(members: tuple, shape: tuple[tuple[int, bool], ...]) -> _ShapeTable:
    """The members with a count- and charge-consistent order for ``shape`` as (formula, orders, weight),
    cached: an enumeration asks for the same few shapes hundreds of times."""
    rows = ((formula, _consistent_orders(species, shape), weight) for formula, species, weight in members)
    return _ShapeTable(tuple(row for row in rows if row[1]))
