"""Retrieval of family cards for a request: the context every proposer is handed.

The paper's pi_hi reads Wikipedia; here the knowledge is the family cards, and retrieval finds the
cards a sentence is about, even when it paraphrases ("like the mineral K2NaAlF6").
"""

from __future__ import annotations

from dataclasses import dataclass

from genms_pmg.knowledge.families import FAMILIES, FamilyCard
from genms_pmg.request import Request


@dataclass(frozen=True)
class RetrievedCard:
    """A card with the retrieval score (higher is closer) and how it was found."""

    card: FamilyCard
    score: float
    how: str


def retrieve_cards(request: Request | str, *, k: int = 3) -> list[RetrievedCard]:
    """The ``k`` cards most relevant to ``request``, best first.

    A family the parser recognised always comes first (score 1.0).
    """
    text = request.text if isinstance(request, Request) else request
    family = request.family if isinstance(request, Request) else None
    found: list[RetrievedCard] = []
    if family is not None:
        found.append(RetrievedCard(FAMILIES[family], 1.0, "parsed family"))
    lowered = text.lower()
    for card in FAMILIES.values():
        if card.key == family:
            continue
        hits = [ex for ex in card.examples if ex.lower() in lowered]
        if hits:
            found.append(RetrievedCard(card, 0.9, f"example {hits[0]} named"))
    return found[:k]
