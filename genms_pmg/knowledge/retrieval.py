"""Retrieval of family cards for a request: the context every proposer is handed.

The paper's pi_hi reads Wikipedia; here the knowledge is the family cards, and retrieval finds the
cards a sentence is about, even when it paraphrases ("like the mineral K2NaAlF6", "AB2O4 with Mg
on tetrahedral sites", "the structure of CaTiO3"). Four signals, best first:

1. the family the rule parser recognised (always first, score 1.0);
2. structural evidence: a card example, a mineral name or an OQMD-ICSD structure of a formula in
   the text (:mod:`genms_pmg.knowledge.lookup`);
3. keyword overlap (BM25) with the card's text (:mod:`genms_pmg.knowledge.documents`);
4. cosine similarity of all-MiniLM-L6-v2 sentence embeddings (:mod:`genms_pmg.knowledge.embedding`).

Signals 2-4 are combined as a weighted sum (:data:`DEFAULT_WEIGHTS`, tuned on the tuning prompts
of ``tests/data/retrieval_prompts.json`` by ``benchmarks/retrieval.py``; held-out results in
``benchmarks/results/retrieval.md``). Without the embedding model the other signals still work.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from genms_pmg.errors import GenMSError, UsageError
from genms_pmg.knowledge.documents import card_chunks, card_keyword_text, documents_hash
from genms_pmg.knowledge.families import FAMILIES, FamilyCard, get_family
from genms_pmg.knowledge.lookup import Evidence, evidence_for
from genms_pmg.request import Request

__all__ = ["DEFAULT_WEIGHTS", "CardRetriever", "RetrievalWeights", "RetrievedCard", "Signals", "retrieve_cards"]

log = logging.getLogger(__name__)

_KEYS = tuple(FAMILIES)
_STOPWORDS = frozenset((
    "a", "an", "the", "that", "this", "these", "those", "is", "are", "be", "been", "was", "were", "which",
    "who", "whose", "what", "how", "it", "its", "as", "at", "by", "for", "from", "in", "into", "on", "of",
    "to", "and", "or", "but", "with", "without", "like", "such", "e.g", "i.e", "me", "my", "we", "our", "you",
    "your", "some", "any", "one", "ones", "can", "could", "would", "should", "will", "want", "need", "give",
    "find", "make", "show", "please", "also", "very", "just", "than", "then", "there", "here", "so", "do",
    "does", "both", "each", "per", "all", "more", "most", "other", "same", "structure", "structures", "type",
    "kind", "compound", "compounds", "material", "materials", "crystal", "crystals", "phase", "phases",
    "family",
))


@dataclass(frozen=True)
class RetrievedCard:
    """A card with the retrieval score (higher is closer) and how it was found."""

    card: FamilyCard
    score: float
    how: str


@dataclass(frozen=True)
class RetrievalWeights:
    """Weights of the combined score (each signal lies in [0, 1]; the weights sum to 1).

    Attributes:
        formula: structural evidence from formulas and mineral names.
        keywords: BM25 keyword score, relative to the best card.
        embedding: sentence-embedding similarity, rescaled so the best card is 1 and the median 0.
    """

    formula: float
    keywords: float
    embedding: float

    def __post_init__(self) -> None:
        values = (self.formula, self.keywords, self.embedding)
        if min(values) < 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
            raise UsageError(f"retrieval weights must be non-negative and sum to 1, got {values}; "
                             "e.g. RetrievalWeights(formula=0.4, keywords=0.3, embedding=0.3)")


#: Tuned on the 40 tuning prompts only (grid search in ``benchmarks/retrieval.py``).
DEFAULT_WEIGHTS = RetrievalWeights(formula=0.65, keywords=0.25, embedding=0.1)


# -- keywords ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[a-z0-9]+(?:['/][a-z0-9]+)*")
_PREFIX = 6  # prefix stemming: "octahedra", "octahedral", "octahedron" all read "octahe"


def tokens(text: str) -> list[str]:
    """Lower-case search terms: words cut to a 6-letter prefix, formulas and symbols kept whole."""
    out = []
    for word in _TOKEN.findall(text.lower().replace("-", " ")):
        if word in _STOPWORDS or len(word) < 2:
            continue
        out.append(word[:_PREFIX] if word.isalpha() else word)
    return out


class _BM25:
    """Okapi BM25 over the card documents (k1 = 1.2, b = 0.75)."""

    def __init__(self, docs: list[list[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.tf = [Counter(d) for d in docs]
        self.len = np.array([len(d) for d in docs], dtype=float)
        self.k1, self.b = k1, b
        df = Counter(t for d in docs for t in set(d))
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        """BM25 score of each document and the query terms it matched."""
        out = np.zeros(len(self.tf))
        hits: list[list[str]] = [[] for _ in self.tf]
        norm = self.k1 * (1 - self.b + self.b * self.len / self.len.mean())
        for term in dict.fromkeys(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i, tf in enumerate(self.tf):
                f = tf.get(term, 0)
                if f:
                    out[i] += idf * f * (self.k1 + 1) / (f + norm[i])
                    hits[i].append(term)
        return out, hits


@lru_cache(maxsize=1)
def _keyword_index() -> _BM25:
    return _BM25([tokens(card_keyword_text(k)) for k in _KEYS])


# -- embeddings -------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _card_embeddings(encoder) -> tuple[np.ndarray, np.ndarray]:
    """(chunk embeddings, card index of each chunk), from the cache file when it matches."""
    from genms_pmg.data.cache import data_dir, write_atomic

    chunks = [(i, c) for i, key in enumerate(_KEYS) for c in card_chunks(key)]
    owner = np.array([i for i, _ in chunks])
    path = data_dir() / "retrieval" / f"cards-{encoder.name}-{documents_hash()[:16]}.npy"
    try:
        vectors = np.load(path)
        if vectors.shape[0] == len(chunks):
            return vectors, owner
    except (OSError, ValueError):
        pass
    vectors = encoder.encode([c for _, c in chunks])
    try:
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        write_atomic(path, buffer.getvalue())
    except (OSError, GenMSError):
        pass  # read-only cache: recompute next time (about a second)
    return vectors, owner


@dataclass
class Signals:
    """Per-card signals for one text, in card order (``FAMILIES``), each in [0, 1]."""

    formula: np.ndarray
    keywords: np.ndarray
    embedding: np.ndarray | None
    cosine: np.ndarray | None
    evidence: dict[str, Evidence]
    keyword_hits: list[list[str]]


class CardRetriever:
    """Scores every card against a request and keeps the best.

    Args:
        weights: how the signals combine (default :data:`DEFAULT_WEIGHTS`).
        embeddings: use the sentence-embedding model when it loads (False: keywords and formulas).
        encoder: an object with ``name`` and ``encode(list[str]) -> unit vectors`` (default: the
            shipped all-MiniLM-L6-v2, loaded on first use).
    """

    def __init__(self, *, weights: RetrievalWeights = DEFAULT_WEIGHTS, embeddings: bool = True,
                 encoder=None) -> None:
        self.weights = weights
        self.embeddings = embeddings
        self._encoder = encoder

    @property
    def encoder(self):
        """The embedding model, or None when turned off or unavailable (one warning is logged)."""
        if not self.embeddings:
            return None
        if self._encoder is None:
            from genms_pmg.knowledge.embedding import get_encoder

            return get_encoder()
        return self._encoder

    def signals(self, text: str) -> Signals:
        """All three signals for ``text``."""
        evidence = evidence_for(text)
        formula = np.array([evidence[k].strength if k in evidence else 0.0 for k in _KEYS])
        raw, hits = _keyword_index().scores(tokens(text))
        keywords = raw / raw.max() if raw.max() > 0 else raw
        embedding = cosine = None
        encoder = self.encoder
        if encoder is not None:
            vectors, owner = _card_embeddings(encoder)
            sims = vectors @ encoder.encode([text])[0]
            cosine = np.full(len(_KEYS), -1.0)
            np.maximum.at(cosine, owner, sims)
            top, mid = cosine.max(), float(np.median(cosine))
            embedding = np.clip((cosine - mid) / (top - mid), 0, 1) if top > mid else np.zeros_like(cosine)
        return Signals(formula, keywords, embedding, cosine, evidence, hits)

    def combine(self, signals: Signals) -> np.ndarray:
        """Weighted sum of the signals; a missing embedding signal's weight goes to the others."""
        w = self.weights
        parts = [(w.formula, signals.formula), (w.keywords, signals.keywords)]
        if signals.embedding is not None:
            parts.append((w.embedding, signals.embedding))
        total = sum(weight for weight, _ in parts)
        if total <= 0:
            return np.zeros(len(_KEYS))
        return sum(weight * values for weight, values in parts) / total

    def retrieve(self, request: Request | str, *, k: int = 3) -> list[RetrievedCard]:
        """The ``k`` cards most relevant to ``request``, best first (see :func:`retrieve_cards`)."""
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}; ask for e.g. k=3 cards")
        text, family = _text_and_family(request)
        signals = self.signals(text)
        scores = self.combine(signals)
        found: list[RetrievedCard] = []
        if family is not None:
            found.append(RetrievedCard(get_family(family), 1.0, "parsed family"))
        order = sorted(range(len(_KEYS)), key=lambda i: (-scores[i], i))  # ties: card order
        for i in order:
            if len(found) >= k or scores[i] <= 0:
                break
            if _KEYS[i] == family:
                continue
            found.append(RetrievedCard(FAMILIES[_KEYS[i]], round(min(float(scores[i]), 0.99), 4),
                                       _how(i, signals)))
        return found


def _text_and_family(request: Request | str) -> tuple[str, str | None]:
    if isinstance(request, Request):
        return request.text, request.family
    if not isinstance(request, str) or not request.strip():
        raise UsageError("retrieval needs a request; describe the material, e.g. 'like the mineral K2NaAlF6'")
    from genms_pmg.parsing import parse

    try:
        return request, parse(request).family
    except GenMSError:  # a sentence the parser refuses can still be about a family
        return request, None


def _how(i: int, signals: Signals) -> str:
    parts = []
    ev = signals.evidence.get(_KEYS[i])
    if ev is not None:
        parts.append(ev.how)
    if signals.keywords[i] > 0:
        parts.append("keywords " + ", ".join(signals.keyword_hits[i][:4]))
    if signals.cosine is not None:
        parts.append(f"embedding cosine {signals.cosine[i]:.2f}")
    return "; ".join(parts)


@lru_cache(maxsize=1)
def _default_retriever() -> CardRetriever:
    return CardRetriever()


def retrieve_cards(request: Request | str, *, k: int = 3) -> list[RetrievedCard]:
    """The ``k`` cards most relevant to ``request``, best first.

    A family the parser recognised always comes first (score 1.0); a plain string is parsed
    first, and one the parser refuses is still matched on formulas, keywords and embeddings.
    """
    return _default_retriever().retrieve(request, k=k)
