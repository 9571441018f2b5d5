"""pi_lo by template substitution: put the target's elements on the sites of a known structure.

For a target such as ZnGa2O4 the generator collects every reference structure with the same
anonymous formula (AB2C4) from the OQMD relaxations of ICSD structures and from pymatgen's AFLOW
prototype library, groups them by prototype, ranks the prototypes (family card first, then its
space groups, then chemical closeness, stability and how common the prototype is), substitutes
the species site by site and rescales the volume. It returns an empty list when no reference has
the target's anonymous formula: other generators (or the search) must handle such compositions.
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import math
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element, Species, Structure

from genms_pmg.data.oqmd import ReferenceStructureDB, normalize_formula
from genms_pmg.knowledge.families import FamilyCard, get_family
from genms_pmg.structures.base import CrystalGenerator, GeneratedStructure

__all__ = ["Template", "TemplateGenerator", "prototype_key"]

_ANON_RE = re.compile(r"[A-Z][a-z]?(\d*)")
_CENTERING = {"P": 1, "R": 1, "F": 4, "I": 2, "C": 2, "A": 2, "B": 2, "S": 2}


@lru_cache(maxsize=None)
def prototype_key(label: str) -> tuple:
    """Source-independent key of a prototype label, so OQMD and AFLOW names can be compared.

    ``"AB2C4_2_a_d_e_227"`` (OQMD: formula_Z_wyckoffs_spacegroup, multiplicity as suffix) and
    ``"A2BC4_cF56_227_d_a_e"`` (AFLOW: formula_pearson_spacegroup_wyckoffs, multiplicity as prefix,
    other element order) both give ``(227, ((1, ('a',)), (2, ('d',)), (4, ('e',))))``.
    Unparseable labels give ``("raw", label)``.
    """
    parts = label.split("_")
    try:
        if len(parts) >= 4 and parts[1][:1].isalpha():  # AFLOW
            sg, tokens, pattern = int(parts[2]), parts[3:], r"(\d*)([a-z])"
        else:  # OQMD
            sg, tokens, pattern = int(parts[-1]), parts[2:-1], r"([a-z])(\d*)"
        counts = [int(c or 1) for c in _ANON_RE.findall(parts[0])]
        if not counts or len(counts) != len(tokens):
            return ("raw", label)
        sites = []
        for count, token in zip(counts, tokens):
            letters: list[str] = []
            for a, b in re.findall(pattern, token):
                letter, mult = (b, a) if pattern.startswith("(\\d") else (a, b)
                letters.extend(letter * int(mult or 1))
            sites.append((count, tuple(sorted(letters))))
        return (sg, tuple(sorted(sites)))
    except (ValueError, IndexError):
        return ("raw", label)


@dataclass(frozen=True)
class Template:
    """A reference structure usable as a template (no structure loaded yet)."""

    source: str  # "oqmd-icsd" or "aflow"
    id: int | str
    name: str
    formula: str
    label: str
    spacegroup: int
    nsites: int  # atoms in the primitive cell (from the label; checked on loading)
    stability: float | None
    amounts: tuple[tuple[str, float], ...]


@lru_cache(maxsize=1)
def _aflow_entries() -> tuple[tuple[dict, Template, str], ...]:
    """pymatgen's AFLOW library read straight from its JSON (importing the module takes seconds)."""
    spec = importlib.util.find_spec("pymatgen.analysis.prototypes")
    if spec is None or not spec.submodule_search_locations:
        return ()
    path = Path(list(spec.submodule_search_locations)[0]) / "aflow_prototypes.json.gz"
    if not path.is_file():
        return ()
    with gzip.open(path, "rt") as handle:
        entries = json.load(handle)
    out = []
    for i, entry in enumerate(entries):
        tags, counts = entry["tags"], {}
        for site in entry["snl"]["sites"]:
            for sp in site["species"]:
                counts[sp["element"]] = counts.get(sp["element"], 0) + sp["occu"]
        comp = Composition(counts).reduced_composition
        label, pearson = tags["aflow"], tags.get("pearson", "")
        nsites = len(entry["snl"]["sites"])
        if pearson[2:].isdigit():  # primitive-cell size from the Pearson symbol (cF56 -> 14)
            nsites = int(pearson[2:]) // _CENTERING.get(pearson[1:2], 1)
        tmpl = Template("aflow", f"aflow:{i}", tags.get("mineral") or tags.get("strukturbericht") or label,
                        comp.reduced_formula, label, int(label.split("_")[2]), nsites, None,
                        _amounts(comp.reduced_formula))
        out.append((entry["snl"], tmpl, comp.anonymized_formula))
    return tuple(out)


@lru_cache(maxsize=65536)
def _amounts(formula: str) -> tuple[tuple[str, float], ...]:
    """Element amounts divided by their gcd (pymatgen keeps ``Cl2`` and ``Rb2O2`` unreduced)."""
    amounts = Composition(formula).get_el_amt_dict()
    if all(abs(a - round(a)) < 1e-6 for a in amounts.values()):
        div = math.gcd(*(int(round(a)) for a in amounts.values()))
        amounts = {e: float(round(a) // div) for e, a in amounts.items()}
    return tuple(amounts.items())


@lru_cache(maxsize=None)
def _descriptor(symbol: str) -> tuple[float, float, float]:
    """Electronegativity, a typical ionic radius and the atomic radius of an element."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        el = Element(symbol)
        x = float(el.X) if el.X == el.X else 0.0
        atomic = float(el.atomic_radius or 1.5)
        ionic = float(el.average_ionic_radius or 0.0) or atomic
    return x, ionic, atomic


@lru_cache(maxsize=None)
def _pair_cost(a: str, b: str) -> float:
    """Cheap element mismatch used to pick each prototype's best member."""
    xa, ra, _ = _descriptor(a)
    xb, rb, _ = _descriptor(b)
    return abs(xa - xb) + abs(ra - rb) / 0.5


@lru_cache(maxsize=4096)
def _oxidation_states(formula: str) -> tuple[tuple[str, float], ...] | None:
    """Most likely oxidation states (pymatgen's guess, cached), or None for intermetallics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guesses = Composition(formula).oxi_state_guesses(max_sites=-1)
    return tuple(guesses[0].items()) if guesses else None


@lru_cache(maxsize=None)
def _ionic_radius(symbol: str, ox: float) -> float:
    if ox == round(ox) and ox != 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                radius = Species(symbol, int(round(ox))).ionic_radius
            except (ValueError, KeyError):
                radius = None
        if radius:
            return float(radius)
    return _descriptor(symbol)[1]


def _mappings(target: dict[str, float], template: dict[str, float], *,
              limit: int = 720) -> list[dict[str, str]]:
    """Amount-preserving bijections template element -> target element (at most ``limit``)."""
    blocks = []
    for amount in sorted(set(target.values())):
        tgt = sorted(e for e, a in target.items() if a == amount)
        src = sorted(e for e, a in template.items() if abs(a - amount) < 1e-6)
        if len(src) != len(tgt):
            return []
        blocks.append([dict(zip(src, perm)) for perm in itertools.permutations(tgt)])
    out = []
    for combo in itertools.product(*blocks):
        out.append({k: v for part in combo for k, v in part.items()})
        if len(out) >= limit:
            break
    return out


def _cheap_cost(mapping: dict[str, str], template: dict[str, float], total: float) -> float:
    return sum(template[t] * _pair_cost(t, e) for t, e in mapping.items()) / total


def _full_cost(mapping: dict[str, str], tmpl: Template, target_formula: str, total: float) -> float:
    """Mismatch of electronegativity, radius and oxidation state, weighted by site counts."""
    ox_t, ox_e = _oxidation_states(tmpl.formula), _oxidation_states(target_formula)
    amounts, cost = dict(tmpl.amounts), 0.0
    for t, e in mapping.items():
        (xt, _, at), (xe, _, ae) = _descriptor(t), _descriptor(e)
        if ox_t and ox_e:
            ot, oe = dict(ox_t)[t], dict(ox_e)[e]
            d = abs(xt - xe) + abs(_ionic_radius(t, ot) - _ionic_radius(e, oe)) / 0.5 + 0.3 * abs(ot - oe)
            d += 1.5 if ot * oe < 0 else 0.0
        else:
            d = abs(xt - xe) + abs(at - ae) / 0.5
        cost += amounts[t] * d
    return cost / total


def _atomic_volume(amounts: dict[str, float]) -> float:
    return sum(a * _descriptor(e)[2] ** 3 for e, a in amounts.items())


def _min_distance(structure: Structure) -> float:
    if len(structure) < 2:
        return min(structure.lattice.abc)
    dm = structure.distance_matrix
    return float(np.min(dm[np.triu_indices(len(structure), 1)]))


class TemplateGenerator(CrystalGenerator):
    """Template substitution over OQMD-ICSD and AFLOW prototypes (deterministic, fast).

    Args:
        exclude_formulas: reduced formulas whose references are never used as templates
            (leave-formula-out benchmarks).
        max_atoms: cell-size limit when ``generate`` gets ``max_atoms=None``.
        use_aflow: also use pymatgen's AFLOW prototype library.
        reference_db: the OQMD-ICSD index to use (default: the shared cached one, loaded lazily).
    """

    name = "templates"

    def __init__(self, *, exclude_formulas: Iterable[str] = (), max_atoms: int = 40,
                 use_aflow: bool = True, reference_db: ReferenceStructureDB | None = None) -> None:
        self.exclude_formulas = frozenset(normalize_formula(f) for f in exclude_formulas)
        self.max_atoms = max_atoms
        self.use_aflow = use_aflow
        self._db = reference_db

    @property
    def db(self) -> ReferenceStructureDB:
        """The reference index, loaded on first use so constructing the plugin stays cheap."""
        if self._db is None:
            self._db = ReferenceStructureDB.default()
        if self.exclude_formulas - self._db.exclude_formulas:
            self._db = self._db.without(self.exclude_formulas)
        return self._db

    def templates(self, composition: str | Composition, *, max_atoms: int | None = None,
                  family: FamilyCard | None = None) -> list[Template]:
        """All usable templates with the anonymous formula of ``composition``, within ``max_atoms``.

        Templates of the ``family`` card's own prototype labels are kept whatever their size unless
        ``max_atoms`` is given (a garnet's primitive cell has 80 atoms; the default limit is 40).
        """
        comp = Composition(normalize_formula(composition)).reduced_composition
        anon, limit = comp.anonymized_formula, max_atoms if max_atoms is not None else self.max_atoms
        own = {prototype_key(p) for p in family.oqmd_prototypes + family.aflow_prototypes} if family else set()
        atoms_per_fu = int(round(sum(a for _, a in _amounts(comp.reduced_formula))))
        out = []
        for r in self.db.candidates(anon):
            z = r.proto_name.split("_")[1] if r.proto_name.count("_") >= 2 else ""
            nsites = min(int(z) * atoms_per_fu, r.nsites) if z.isdigit() else r.nsites
            if nsites <= limit or (max_atoms is None and own and prototype_key(r.proto_name) in own):
                out.append(Template("oqmd-icsd", r.id, r.name, r.formula, r.proto_name, r.spacegroup,
                                    nsites, r.stability, _amounts(r.formula)))
        if self.use_aflow:
            from genms_pmg.data.forget import is_forgotten

            out.extend(t for _, t, a in _aflow_entries()
                       if a == anon and t.nsites <= limit and t.formula not in self.exclude_formulas
                       and not is_forgotten(t.formula))
        return out

    def generate(self, composition: Composition, *, n: int, seed: int = 0, family: str | None = None,
                 max_atoms: int | None = None, space_group: int | None = None) -> list[GeneratedStructure]:
        """Up to ``n`` distinct substituted structures, best-ranked templates first.

        ``space_group`` (a number the request asked for) puts templates of that space group first.

        Returns an empty list when no reference shares the target's anonymous formula or none fits
        in ``max_atoms`` (default ``self.max_atoms``). The same seed always gives the same output;
        the seed only breaks exact ties between prototypes.
        """
        from pymatgen.analysis.structure_matcher import StructureMatcher

        comp = Composition(normalize_formula(composition)).reduced_composition
        target = dict(_amounts(comp.reduced_formula))
        if n <= 0 or any(abs(a - round(a)) > 1e-6 for a in target.values()):
            return []  # fractional (disordered) compositions have no ordered template
        card = get_family(family) if family else None
        formula = comp.reduced_formula
        matcher, results = StructureMatcher(), []
        for tmpl, mapping, info in self._attempts(self.templates(comp, max_atoms=max_atoms, family=card), target,
                                                  formula, card, np.random.default_rng(seed), n, space_group):
            limit = max_atoms if max_atoms is not None else max(self.max_atoms, tmpl.nsites)
            structure = self._realise(tmpl, mapping, limit, info)
            if structure is None or structure.composition.reduced_formula != formula:
                continue
            if _min_distance(structure) <= 0.5:
                continue
            if any(matcher.fit(structure, g.structure) for g in results):
                continue
            info["formula_units"] = int(round(len(structure) / sum(target.values())))
            results.append(GeneratedStructure(structure, self.name, info))
            if len(results) >= n:
                break
        return results

    def _attempts(self, templates: list[Template], target: dict[str, float], formula: str,
                  card: FamilyCard | None, rng: np.random.Generator, n: int,
                  space_group: int | None = None) -> Iterator[tuple]:
        """Yield (template, mapping, info) in rank order: one per prototype, then alternatives.

        Templates are grouped by :func:`prototype_key`. Each group is represented by its member
        closest in chemistry to the target (cheap electronegativity + radius mismatch, plus its OQMD
        energy above hull clipped to [0, 0.5]), because substituting similar ions distorts the least.
        Groups sort by: the requested space group first, then family prototype, then family space group, then
        ``mismatch - 0.15 ln(1 + #OQMD members) + 0.005 * primitive atoms`` (common, small
        prototypes win near-ties) minus 0.4 when OQMD has the target itself on its hull in that
        prototype, then the seeded jitter. (An off-hull entry of the target is no evidence against
        a prototype: several ICSD entries, e.g. TiNiSn, sit 0.6 eV/atom above the OQMD hull.)
        The species mapping actually used is re-chosen with oxidation states (:func:`_full_cost`).
        At most ``max(3n, n + 10)`` attempts keep ``generate`` fast.
        """
        total = sum(target.values())
        groups: dict[tuple, list[tuple[float, Template, dict]]] = {}
        for tmpl in templates:
            amounts = dict(tmpl.amounts)
            maps = _mappings(target, amounts)
            if not maps:
                continue
            cost, mapping = min(((_cheap_cost(m, amounts, total), m) for m in maps), key=lambda cm: cm[0])
            stab = 0.1 if tmpl.stability is None else min(max(tmpl.stability, 0.0), 0.5)
            groups.setdefault(prototype_key(tmpl.label), []).append((cost + stab, tmpl, mapping))
        card_keys = ({prototype_key(p) for p in card.oqmd_prototypes + card.aflow_prototypes}
                     if card else set())
        ranked = []
        jitter = rng.random(len(groups))
        for (key, members), jit in zip(groups.items(), jitter):
            members.sort(key=lambda m: (m[0], m[1].nsites, str(m[1].id)))
            best, tmpl, _ = members[0]
            count = sum(1 for m in members if m[1].source == "oqmd-icsd")
            score = best - 0.15 * math.log1p(count) + 0.005 * tmpl.nsites
            if any(m[1].formula == formula and m[1].stability is not None and m[1].stability <= 0.025
                   for m in members):
                score -= 0.4  # the target itself is on the OQMD hull in this prototype
            fam = key in card_keys
            sg = card is not None and tmpl.spacegroup in card.space_groups
            asked = space_group is None or tmpl.spacegroup == space_group
            ranked.append(((not asked, not fam, not sg, round(score, 9), jit), fam, score, members))
        ranked.sort(key=lambda r: r[0])
        budget = max(3 * n, n + 10)
        tried: set[tuple] = set()
        # stage 0: each prototype's best member and mapping; stage 1: its second-best mapping when
        # nearly as good (e.g. swapping two equal-count cations); stage 2: the next members.
        for stage in range(3):
            for _, fam, score, members in ranked:
                for _, tmpl, _ in (members[:1] if stage < 2 else members[1:3]):
                    costed = sorted((_full_cost(m, tmpl, formula, total), sorted(m.items()), m)
                                    for m in _mappings(target, dict(tmpl.amounts)))
                    if stage == 1 and (len(costed) < 2 or costed[1][0] > costed[0][0] + 0.5):
                        continue
                    cost, _, mapping = costed[1] if stage == 1 else costed[0]
                    marker = (tmpl.id, tuple(sorted(mapping.items())))
                    if marker in tried:
                        continue
                    tried.add(marker)
                    budget -= 1
                    if budget < 0:
                        return
                    yield tmpl, mapping, {
                        "template_source": tmpl.source, "template_id": tmpl.id, "template_name": tmpl.name,
                        "template_formula": tmpl.formula, "proto_label": tmpl.label,
                        "template_spacegroup": tmpl.spacegroup, "template_stability": tmpl.stability,
                        "species_map": dict(sorted(mapping.items())), "family_match": bool(fam),
                        "score": round(float(score), 4), "mapping_cost": round(float(cost), 4),
                    }

    def _load(self, tmpl: Template) -> Structure | None:
        if tmpl.source == "aflow":
            snl = next(s for s, t, _ in _aflow_entries() if t.id == tmpl.id)
            return Structure.from_dict(snl).get_primitive_structure()
        structure = self.db.structure(int(tmpl.id))
        return structure.get_primitive_structure() if len(structure) > tmpl.nsites else structure

    def _realise(self, tmpl: Template, mapping: dict[str, str], limit: int, info: dict) -> Structure | None:
        """Substitute species and rescale the volume.

        The volume is the geometric mean of pymatgen's DLS prediction and the template volume scaled
        by the ratio of summed atomic volumes (the ratio alone when DLS fails); an identity mapping
        keeps the relaxed template volume.
        """
        from pymatgen.analysis.structure_prediction.volume_predictor import (
            DLSVolumePredictor,
        )

        base = self._load(tmpl)
        if base is None or len(base) > limit:
            return None
        new = Structure(base.lattice, [mapping[s.specie.symbol] for s in base], base.frac_coords)
        if all(t == e for t, e in mapping.items()):
            info["volume_method"] = "template"
            return new
        amounts = dict(tmpl.amounts)
        ratio = _atomic_volume({mapping[t]: a for t, a in amounts.items()}) / _atomic_volume(amounts)
        volume, info["volume_method"] = base.volume * ratio, "atomic_volume_ratio"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dls = DLSVolumePredictor().predict(new)
            if dls > 0 and math.isfinite(dls):
                # The geometric mean of both estimates beat either alone on OQMD-ICSD leave-one-out.
                volume, info["volume_method"] = math.sqrt(dls * volume), "dls_ratio_geomean"
        except Exception:  # DLS lacks data for some elements: keep the atomic-volume scaling
            pass
        new.scale_lattice(volume)
        return new
