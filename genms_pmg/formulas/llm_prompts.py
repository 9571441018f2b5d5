"""The LLM's prompts: the paper's pi_hi request with retrieved knowledge, and the R_hi ranking question.

The pi_hi prompt carries the retrieved family cards, the request's hard constraints spelled out, and the
known formulae of the request's chemistry so the LLM avoids them (the paper's long-context dedup).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from genms_pmg.knowledge.families import ANION_CLASSES, FamilyCard, find_family
from genms_pmg.request import Request

__all__ = ["anion_elements", "build_proposal_prompt", "constraint_lines", "describe_card", "known_formulas_for",
           "rank_prompt", "target_ratio"]

#: Known formulae of the relevant chemistry listed in the prompt (the paper's long-context dedup).
KNOWN_IN_PROMPT = 60
SYSTEM_PROMPT = "You are an expert materials chemist."
RANK_SYSTEM_PROMPT = "You are an expert materials chemist. You answer with a single number."
_SYMBOL = re.compile(r"[A-Z][a-z]?")


def rank_prompt(request: Request, formula: str) -> str:
    """The paper's LLM R_hi question for one formula: how likely does it satisfy the request?"""
    return (f"Request: {request.text}\nCandidate chemical formula: {formula}\n"
            f"On a scale from 0 to 10, how likely is it that {formula} is a stable, realistic material that "
            "satisfies the request? Answer with one number from 0 (certainly not) to 10 (certainly).")


# -- pi_hi ----------------------------------------------------------------------------------------
def _signed(states: Iterable[int]) -> str:
    return "/".join(f"{s:+d}" for s in states)


def describe_card(card: FamilyCard) -> str:
    """One prompt line per card: name, template, site chemistry, examples, notes."""
    sites = []
    for s in card.sites:
        chem = s.kind if s.kind == "metal" else f"{s.kind} {_signed(s.oxidation_states)}".strip()
        if s.elements:
            chem += f" from {', '.join(s.elements)}"
        if s.coordination:
            chem += f", {s.coordination}-coordinated"
        sites.append(f"{s.role} ({chem})")
    parts = [f"{card.name}: template {card.template}; sites {'; '.join(sites)}"]
    from genms_pmg.data.forget import without_forgotten

    examples = without_forgotten(card.examples)
    if examples:
        parts.append(f"known examples {', '.join(examples)}")
    if card.notes:
        parts.append(card.notes)
    from genms_pmg.data.forget import redact

    return redact("- " + "; ".join(parts))


def anion_elements(request: Request) -> tuple[str, ...]:
    """Anion elements the request asks for, else its family's default anions."""
    if request.anion_classes:
        return tuple(dict.fromkeys(el for c in request.anion_classes for el in ANION_CLASSES.get(c, ((), 0))[0]))
    card = find_family(request.family)
    return tuple(card.default_anions) if card else ()


def target_ratio(request: Request) -> tuple[int, ...] | None:
    """The reduced, sorted atom ratio asked for, else the family's, else None."""
    if request.atom_ratio:
        return _reduced_ratio(request.atom_ratio)
    card = find_family(request.family)
    return _reduced_ratio(card.ratio) if card else None


def _reduced_ratio(counts: Iterable[int]) -> tuple[int, ...]:
    counts = [int(c) for c in counts]
    g = math.gcd(*counts) or 1
    return tuple(sorted(c // g for c in counts))


def constraint_lines(request: Request) -> list[str]:
    """The request's hard constraints, spelled out for the LLM."""
    lines = []
    if request.required_elements:
        lines.append(f"Every formula must contain {', '.join(request.required_elements)}.")
    if request.excluded_elements:
        lines.append(f"No formula may contain {', '.join(request.excluded_elements)}.")
    if request.anion_classes:
        lines.append(f"Anion: {' or '.join(request.anion_classes)} ({', '.join(anion_elements(request))}).")
    ratio = target_ratio(request)
    if ratio:
        lines.append(f"Element counts in the ratio {':'.join(map(str, ratio))} (in any order).")
    if request.metallic is True:
        lines.append("The material must be a metal.")
    elif request.metallic is False:
        lines.append("The material must not be a metal.")
    if request.max_atoms is not None:
        lines.append(f"At most {request.max_atoms} atoms per formula unit.")
    return lines


def build_proposal_prompt(request: Request, *, n: int, cards: Sequence[FamilyCard] = (),
                          avoid: Sequence[str] = ()) -> str:
    """The paper's pi_hi prompt: retrieved knowledge, then "list chemical formulae for a hypothetical ..."."""
    parts = []
    if cards:
        parts.append("Background:\n" + "\n".join(describe_card(c) for c in cards))
    parts.append(f"Request: {request.text}")
    constraints = constraint_lines(request)
    if constraints:
        parts.append("Constraints:\n" + "\n".join(f"- {line}" for line in constraints))
    if avoid:
        parts.append("Already known (in Materials Project, ICSD or proposed before), do not list these: "
                     + ", ".join(avoid))
    family = find_family(request.family)
    category = family.name if family else "material that fits the request"
    parts.append(f"List {n} chemical formulae for a hypothetical {category} that is stable and realistic "
                 "and is not in Materials Project or ICSD. Output only the chemical formulae, one per line.")
    return "\n\n".join(parts)


# -- known formulae of the relevant chemistry ----------------------------------------------------------
_GROUP = re.compile(r"\(([^()]*)\)(\d*)")
_ELEMENT_COUNT = re.compile(r"([A-Z][a-z]?)(\d*(?:\.\d+)?)")


def _element_counts(formula: str) -> dict[str, float]:
    """Element amounts of a reduced formula such as ``Li3Co2P2(O4F)2`` (fast: no pymatgen)."""

    def expand(m: re.Match) -> str:
        mult = float(m.group(2) or 1)
        return "".join(f"{el}{float(c or 1) * mult:g}" for el, c in _ELEMENT_COUNT.findall(m.group(1)))

    text = formula
    while "(" in text:
        new = _GROUP.sub(expand, text)
        if new == text:
            break
        text = new
    counts: dict[str, float] = {}
    for el, c in _ELEMENT_COUNT.findall(text):
        counts[el] = counts.get(el, 0.0) + float(c or 1)
    return counts


def _ratio_of(counts: Mapping[str, float]) -> tuple[int, ...] | None:
    if any(abs(v - round(v)) > 1e-6 for v in counts.values()):
        return None
    return _reduced_ratio(round(v) for v in counts.values())


def known_formulas_for(request: Request, formulas: Iterable[str], *, cap: int = KNOWN_IN_PROMPT) -> list[str]:
    """Known formulae of the request's chemistry, at most ``cap``, spread evenly over the sorted list.

    Relevant means: every required element, one of the anions (asked for, or the family's), none of the
    excluded elements, and the family's (or asked) ratio when there is one. Without required elements
    or anions the chemistry is too broad to list, and nothing is returned.
    """
    required = set(request.required_elements)
    anions = set(anion_elements(request))
    if not required and not anions:
        return []
    excluded = set(request.excluded_elements)
    ratio = target_ratio(request)
    hits = []
    for formula in formulas:
        symbols = set(_SYMBOL.findall(formula))
        if not required <= symbols or (anions and not anions & symbols) or symbols & excluded:
            continue
        if ratio is not None and _ratio_of(_element_counts(formula)) != ratio:
            continue
        hits.append(formula)
    hits.sort()
    if len(hits) <= cap:
        return hits
    return [hits[i * len(hits) // cap] for i in range(cap)]
