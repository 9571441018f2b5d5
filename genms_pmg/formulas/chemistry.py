"""Shared chemistry look-ups for the formula level: oxidation states, radii, data-mined likelihoods.

Everything here reads data that ships with SMACT (ICSD24 oxidation states and species counts, the
oxidation-state probability table of DOI:10.1039/C8FD00032H) or pymatgen (Shannon radii), so the
proposer and the heuristics agree on one chemistry. Look-ups are cached at module level because
the proposer calls them thousands of times per request.
"""

from __future__ import annotations

import json
import math
import warnings
from functools import lru_cache
from pathlib import Path

from pymatgen.core import Composition, Element

from genms_pmg.knowledge.families import ANION_CLASSES

#: Elements never proposed: noble gases, H/He, radioactive Tc/Pm/Po and everything beyond Bi.
EXCLUDED_ELEMENTS: frozenset[str] = frozenset(
    {"H", "He", "Ne", "Ar", "Kr", "Xe", "Rn", "Tc", "Pm", "Po"}
    | {Element.from_Z(z).symbol for z in range(84, 104)}
)

#: Metalloids that act as cations in real compounds but are not in SMACT's metal list.
_EXTRA_CATIONS = ("B", "Si", "As", "Te")

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII", 9: "IX",
          10: "X", 11: "XI", 12: "XII", 14: "XIV"}
_FROM_ROMAN = {v: k for k, v in _ROMAN.items()}

#: family -> role -> (lo, hi) window on r(site)/r(anion), both Shannon radii.
SITE_WINDOWS: dict[str, dict[str, tuple[float, float]]] = {
    "perovskite": {"A": (0.75, 1.45), "B": (0.41, 0.90)},
    "double_perovskite": {"A": (0.75, 1.45), "B": (0.41, 0.90), "B'": (0.41, 0.90)},
    "elpasolite": {"A": (0.75, 1.45), "B": (0.41, 0.90), "B'": (0.41, 0.90)},
    "spinel": {"A": (0.20, 0.60), "B": (0.35, 0.58)},
    "pyrochlore": {"A": (0.60, 0.90), "B": (0.38, 0.62)},
    "fluorite": {"A": (0.60, 1.00)},
    "rutile": {"A": (0.41, 0.75)},
    "rocksalt": {"A": (0.41, 0.85)},
    "zincblende": {"A": (0.20, 0.50)},
    "wurtzite": {"A": (0.20, 0.50)},
}

#: Coordination number -> the word used in reasons.
GEOMETRY = {2: "linear", 3: "trigonal", 4: "tetrahedral", 6: "octahedral", 8: "8-fold",
            12: "12-fold"}


@lru_cache(maxsize=1)
def cation_pool() -> tuple[str, ...]:
    """Elements that may sit on a cation or metal site (SMACT metals plus common metalloids)."""
    from smact import metals

    pool = [el for el in (*metals, *_EXTRA_CATIONS) if el not in EXCLUDED_ELEMENTS]
    return tuple(sorted(set(pool), key=lambda el: Element(el).Z))


@lru_cache(maxsize=None)
def anion_oxidation_state(symbol: str) -> int | None:
    """The usual anionic state of ``symbol``: the anion-class value, else ICSD24's most common one."""
    for elements, ox in ANION_CLASSES.values():
        if symbol in elements:
            return ox
    negative = [ox for ox in oxidation_states(symbol) if ox < 0]
    return max(negative, key=lambda ox: species_count(symbol, ox)) if negative else None


@lru_cache(maxsize=None)
def oxidation_states(symbol: str) -> tuple[int, ...]:
    """ICSD24 oxidation states of ``symbol`` as SMACT ships them (``smact.Element.oxidation_states``)."""
    from smact import data_loader

    states = data_loader.lookup_element_oxidation_states_icsd24(symbol, copy=False)
    return tuple(int(s) for s in states or ())


@lru_cache(maxsize=None)
def electronegativity(symbol: str) -> float | None:
    """Pauling electronegativity from SMACT's element table (None when unknown)."""
    from smact import data_loader

    data = data_loader.lookup_element_data(symbol, copy=False)
    return None if data is None else data.get("el_neg")


@lru_cache(maxsize=1)
def _icsd24_counts() -> dict[tuple[str, int], int]:
    from smact import data_directory

    rows = json.loads((Path(data_directory) / "oxidation_states_icsd24_counts.json").read_text())
    return {(r["element"], int(r["oxidation_state"])): int(r["results_count"]) for r in rows}


def species_count(symbol: str, ox: int) -> int:
    """Number of ICSD 2024 reports of the species (0 when never seen)."""
    return _icsd24_counts().get((symbol, int(ox)), 0)


@lru_cache(maxsize=None)
def element_count(symbol: str) -> int:
    """ICSD 2024 reports of ``symbol`` in any non-zero oxidation state."""
    return sum(c for (el, ox), c in _icsd24_counts().items() if el == symbol and ox != 0)


@lru_cache(maxsize=2)
def _max_count(metallic: bool) -> int:
    counts = _icsd24_counts()
    if metallic:
        return max(counts.get((el, 0), 0) for el in cation_pool())
    return max(c for (el, ox), c in counts.items() if ox > 0 and el in cation_pool())


def popularity(symbol: str, ox: int) -> float:
    """How often a species occurs in ICSD 2024, scaled to (0, 1] by the most common cation.

    The pair probabilities say which oxidation state an element takes but not how often the
    element makes compounds at all; this count fills that gap so Al3+ outranks Rh3+. With
    ``ox=0`` it counts zero-valent (intermetallic) reports, the prior for metal sites.
    """
    return (species_count(symbol, ox) + 1) / (_max_count(ox == 0) + 1)


def oxidation_share(symbol: str, ox: int) -> float:
    """Fraction of an element's ICSD reports that are in state ``ox``."""
    total = element_count(symbol)
    return species_count(symbol, ox) / total if total else 0.0


@lru_cache(maxsize=1)
def _probability_finder():
    from smact.oxidation_states import OxidationStateProbabilityFinder

    return OxidationStateProbabilityFinder()


@lru_cache(maxsize=None)
def _smact_species(symbol: str, ox: int):
    import smact

    return smact.Species(symbol, ox)


@lru_cache(maxsize=None)
def table_pair_probability(cation: str, cation_ox: int, anion: str, anion_ox: int) -> float | None:
    """SMACT's P(cation^ox | anion) from the ICSD-mined table, or None if the pair is not tabulated."""
    finder = _probability_finder()
    included = finder.get_included_species()
    if f"{cation}{cation_ox}" not in included or f"{anion}{anion_ox}" not in included:
        return None
    try:
        return float(finder.pair_probability(_smact_species(cation, cation_ox), _smact_species(anion, anion_ox)))
    except (KeyError, ValueError):
        return None


@lru_cache(maxsize=1)
def _table_anions() -> frozenset[str]:
    return frozenset(s for s in _probability_finder().get_included_species() if "-" in s)


def pair_probability(cation: str, cation_ox: int, anion: str, anion_ox: int) -> tuple[float, bool]:
    """P(cation^ox | anion) and whether it came from SMACT's table.

    Anions outside the table (N, P, C, H, As) fall back to the ICSD share of the oxidation state;
    tabulated anions with an untabulated cation state get a tenth of that share (rare pairs).
    """
    p = table_pair_probability(cation, cation_ox, anion, anion_ox)
    if p is not None:
        return p, True
    share = oxidation_share(cation, cation_ox)
    if f"{anion}{anion_ox}" in _table_anions():
        return 0.1 * share, False
    return share, False


@lru_cache(maxsize=None)
def shannon_radius(symbol: str, ox: int, cn: int | None = None) -> tuple[float | None, bool]:
    """Shannon ionic radius (Å) of ``symbol``^ox at coordination ``cn``, and whether ``cn`` is tabulated.

    Falls back to the nearest tabulated coordination (high spin when spin matters), then to
    pymatgen's average ionic radius; ``(None, False)`` when nothing is known.
    """
    table = Element(symbol).data.get("Shannon radii", {}).get(str(int(ox)), {})
    by_cn = {_FROM_ROMAN[k]: v for k, v in table.items() if k in _FROM_ROMAN}
    if by_cn:
        target = cn if cn is not None else 6
        best = min(by_cn, key=lambda c: (abs(c - target), -c))
        spins = by_cn[best]
        entry = spins.get("High Spin") or spins.get("") or next(iter(spins.values()))
        return float(entry["ionic_radius"]), best == target
    try:
        from pymatgen.core import Species

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            radius = Species(symbol, ox).ionic_radius
    except (ValueError, KeyError):
        radius = None
    return (float(radius) if radius else None), False


def window(x: float | None, lo: float, hi: float, width: float) -> float:
    """1 inside [lo, hi], a Gaussian fall-off of ``width`` outside; 0.7 when ``x`` is unknown."""
    if x is None:
        return 0.7
    d = lo - x if x < lo else (x - hi if x > hi else 0.0)
    return math.exp(-((d / width) ** 2))


@lru_cache(maxsize=None)
def valence_electrons(symbol: str) -> int:
    """Valence electrons counted as Heusler chemists do (group number; p-block minus 10; f-block 3)."""
    el = Element(symbol)
    if el.block == "f":
        return 3
    if el.block == "p":
        return el.group - 10
    return el.group


@lru_cache(maxsize=4096)
def is_charge_neutral(formula: str, *, alloys: bool) -> bool:
    """SMACT validity (charge neutrality plus Pauling test); ``alloys`` accepts all-metal formulas.

    Mixed valence (Mn(3.5+) in LiMn2O4, Fe(8/3+) in Fe3O4) is accepted as SMACT defines it: a
    composition whose element takes two of its states on different sites."""
    from smact.screening import smact_validity

    try:
        return bool(smact_validity(formula, include_alloys=alloys)
                    or smact_validity(formula, include_alloys=alloys, mixed_valence=True))
    except (ValueError, KeyError, TypeError):
        return False


@lru_cache(maxsize=4096)
def reduced_formula(formula: str) -> str | None:
    """pymatgen's reduced formula, or None when ``formula`` does not parse."""
    try:
        comp = Composition(formula)
    except (ValueError, KeyError, TypeError):
        return None
    return comp.reduced_formula if comp.num_atoms > 0 else None


def tolerance_factor(r_a: float, r_b: float, r_x: float) -> float:
    """Goldschmidt tolerance factor t = (rA + rX) / (sqrt(2) (rB + rX))."""
    return (r_a + r_x) / (math.sqrt(2) * (r_b + r_x))


def family_factor(
    family: str | None, sites: list[tuple[str, int]], species: list[tuple[str, float | None]], r_x: float | None
) -> tuple[float, list[str]]:
    """Geometry / electron-count factor in (0, 1] for a whole composition, with its reasons.

    ``sites`` are (role, count) and ``species`` (element, Shannon radius) in the same order; the
    factor multiplies the likelihood so misfits sink instead of vanishing.
    """
    r = {role: radius for (role, _), (_, radius) in zip(sites, species)}
    if family in ("perovskite", "double_perovskite", "elpasolite"):
        b = [r.get("B"), r.get("B'")] if family != "perovskite" else [r.get("B")]
        if r.get("A") and r_x and all(b):
            r_b = sum(b) / len(b)
            t = tolerance_factor(r["A"], r_b, r_x)
            mu = r_b / r_x
            # Goldschmidt window, with a mild preference for the cubic-to-orthorhombic middle, times
            # the octahedral-factor window (BX6 octahedra need rB/rX above ~0.41; Li et al. 2008).
            f = window(t, 0.80, 1.06, 0.04) * math.exp(-(((t - 0.95) / 0.15) ** 2)) * window(mu, 0.41, 0.90, 0.05)
            return f, [f"tolerance factor {t:.2f}", f"octahedral factor {mu:.2f} (0.41-0.90)"]
        return 0.7, ["tolerance factor unknown (missing radius)"]
    if family == "ilmenite":
        if r.get("A") and r.get("B") and r_x:
            t = tolerance_factor(r["A"], r["B"], r_x)
            # both cations octahedral: ABO3 with t below ~0.8 takes the ilmenite, not the perovskite
            return window(t, 0.68, 0.82, 0.04), [f"tolerance factor {t:.2f} (ilmenite 0.68-0.82)"]
        return 0.7, ["tolerance factor unknown (missing radius)"]
    if family == "pyrochlore":
        if r.get("A") and r.get("B"):
            q = r["A"] / r["B"]
            return window(q, 1.46, 1.78, 0.08), [f"rA/rB {q:.2f} (pyrochlore 1.46-1.78)"]
        return 0.7, ["rA/rB unknown (missing radius)"]
    if family in ("spinel", "inverse_spinel") and r.get("A") and r.get("B") and r_x:
        # radius ratios of the tetrahedral and octahedral holes of the close-packed anions, widened to
        # the range real spinels span (MgAl2O4 0.42/0.39, CdCr2S4 0.42/0.33)
        qa, qb = r["A"] / r_x, r["B"] / r_x
        f = window(qa, 0.22, 0.60, 0.08) * window(qb, 0.30, 0.75, 0.08)
        return f, [f"rA/rX {qa:.2f} (0.22-0.60), rB/rX {qb:.2f} (0.30-0.75)"]
    if family in ("heusler", "half_heusler"):
        vec = sum(valence_electrons(el) * count for (_, count), (el, _) in zip(sites, species))
        if family == "half_heusler":
            d = min(abs(vec - 8), abs(vec - 18))
            return math.exp(-((d / 1.5) ** 2)), [f"VEC {vec} (half-Heusler 8 or 18)"]
        return window(vec, 24, 30, 2.0), [f"VEC {vec} (Slater-Pauling 24-30)"]
    return 1.0, []


@lru_cache(maxsize=1)
def substitution_table():
    """pymatgen's ICSD-mined ion-substitution probabilities (Hautier et al. 2011), loaded once
    for the offline proposer and the known-member module alike."""
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionProbability,
    )

    return SubstitutionProbability()
