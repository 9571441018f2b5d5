"""pi_hi and R_hi through an OpenAI-compatible chat endpoint: the paper's LLM path, opt-in.

Nothing here runs unless asked for (``--proposer llm``, ``--llm-rank``): the default search makes no
network call. The endpoint is any OpenAI-compatible server (OpenAI itself, vLLM, llama.cpp, ...),
named by ``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` and ``GENMS_LLM_MODEL``. The LLM's reply is data,
never code: formula-like tokens are cut out with a regex and each is checked with pymatgen. A small
model writes nonsense and an endpoint may be down, so the proposer keeps only formulae that pass
the request's hard R_hi checks and tops up (or falls back) with the offline proposer, warning once.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Composition, Element

from genms_pmg.errors import GenMSWarning, UsageError
from genms_pmg.formulas.base import (
    FormulaHeuristic,
    FormulaProposal,
    FormulaProposer,
    HeuristicResult,
    display_formula,
)
from genms_pmg.formulas.llm_prompts import (
    KNOWN_IN_PROMPT,
    RANK_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    anion_elements,
    build_proposal_prompt,
    known_formulas_for,
    rank_prompt,
    target_ratio,
)
from genms_pmg.request import Request

__all__ = ["LLMFormulaProposer", "LLMFormulaRanking", "LLMSettings", "first_number", "parse_formulas"]

ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_MODEL = "GENMS_LLM_MODEL"
#: Sent when no key is set: local servers ignore the key, but the client insists on one.
PLACEHOLDER_KEY = "sk-no-key-needed"
#: Largest reduced formula (atoms) accepted from the LLM.
MAX_FORMULA_ATOMS = 40
MIN_ELEMENTS, MAX_ELEMENTS = 2, 8
#: Heaviest element accepted (Pu): the chemistry tables stop around here.
MAX_Z = 94

_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
# One formula-like token: element symbols with counts, one level of parentheses, not inside a word.
_TOKEN = re.compile(r"(?<![A-Za-z0-9.])(?:[A-Z][a-z]?\d*|\((?:[A-Z][a-z]?\d*)+\)\d*)+(?![A-Za-z0-9]|\.\d)")
_SYMBOL = re.compile(r"[A-Z][a-z]?")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_SYMBOLS = frozenset(el.symbol for el in Element if el.Z <= MAX_Z)


# -- settings and the chat call ---------------------------------------------------------------------
@dataclass(frozen=True)
class LLMSettings:
    """Where and how to reach the LLM.

    Attributes:
        base_url: the OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:8080/v1``.
        model: model name the endpoint serves.
        api_key: sent as the bearer token (a placeholder when none is set: local servers ignore it).
        timeout_s: seconds per request before giving up.
        max_retries: retries of a failed request by the ``openai`` client.
        temperature: sampling temperature.
        extra_body: server-specific request fields, e.g. ``{"cache_prompt": False}`` for llama.cpp,
            whose prompt cache otherwise makes seeded replies at temperature > 0 differ run to run.
    """

    base_url: str
    model: str
    api_key: str = PLACEHOLDER_KEY
    timeout_s: float = 60.0
    max_retries: int = 2
    temperature: float = 0.7
    extra_body: dict[str, Any] | None = None

    @classmethod
    def from_env(
        cls, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
        timeout_s: float = 60.0, max_retries: int = 2, temperature: float = 0.7,
        extra_body: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
    ) -> LLMSettings:
        """Explicit options first, then ``GENMS_LLM_MODEL``, ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``.

        Raises:
            UsageError: no model or no endpoint is named, or a number is out of range.
        """
        env = os.environ if environ is None else environ
        model = (model or env.get(ENV_MODEL, "")).strip()
        if not model:
            raise UsageError(f"the LLM path needs a model: pass --llm-model NAME (llm_model=...) or set {ENV_MODEL}")
        base_url = (base_url or env.get(ENV_BASE_URL, "")).strip()
        if not base_url:
            raise UsageError(f"the LLM path needs an endpoint: set {ENV_BASE_URL}, e.g. http://127.0.0.1:8080/v1 "
                             "for a local server or https://api.openai.com/v1")
        if not (timeout_s > 0 and max_retries >= 0 and temperature >= 0):
            raise UsageError("LLM timeout_s must be > 0, max_retries >= 0 and temperature >= 0")
        return cls(base_url=base_url, model=model, api_key=(api_key or env.get(ENV_API_KEY, "")).strip() or PLACEHOLDER_KEY,
                   timeout_s=float(timeout_s), max_retries=int(max_retries), temperature=float(temperature),
                   extra_body=dict(extra_body) if extra_body else None)


def _require_openai() -> None:
    if importlib.util.find_spec("openai") is None:
        raise UsageError("the LLM path needs the openai client: pip install 'genms[llm]' (or pip install openai)")


class _EndpointFailure(RuntimeError):
    """The endpoint could not be reached or answered with an error (message: one line)."""


class _Chat:
    """One OpenAI client, made on first use; ``seed`` is dropped if the endpoint rejects it."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self._seed_ok = True
        self.calls = 0
        self.answered = 0  # completions received with a choice in them (``calls`` counts failures too)

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, seed: int | None,
                 temperature: float | None = None) -> str:
        import openai

        s = self.settings
        if self._client is None:
            self._client = openai.OpenAI(base_url=s.base_url, api_key=s.api_key, timeout=s.timeout_s,
                                         max_retries=s.max_retries)
        kwargs: dict[str, Any] = {"model": s.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": s.temperature if temperature is None else temperature}
        if seed is not None and self._seed_ok:
            kwargs["seed"] = int(seed) % 2**31
        if s.extra_body:
            kwargs["extra_body"] = dict(s.extra_body)
        self.calls += 1
        # Odd replies can surface as plain Python errors while the response is read: all are the endpoint's.
        odd = (openai.OpenAIError, OSError, ValueError, TypeError, AttributeError, KeyError, IndexError)
        try:
            try:
                response = self._client.chat.completions.create(**kwargs)
            except openai.BadRequestError:
                if "seed" not in kwargs:
                    raise
                self._seed_ok = False  # an endpoint without seeds: replies are then only as repeatable as it is
                kwargs.pop("seed")
                response = self._client.chat.completions.create(**kwargs)
            choices = getattr(response, "choices", None) or []
            content = choices[0].message.content if choices else None
        except odd as err:
            raise _EndpointFailure(f"{type(err).__name__}: {err}".splitlines()[0][:200]) from err
        if choices:
            self.answered += 1
        return content if isinstance(content, str) else ""


# -- parsing the reply ----------------------------------------------------------------------------
def _checked_formula(token: str, max_atoms: int) -> str | None:
    """The reduced formula of ``token`` if it is a plausible compound, else None."""
    if len(token) > 60 or not set(_SYMBOL.findall(token)) <= _SYMBOLS:
        return None  # pymatgen would read "T2O" as H2O and "Qz" as a dummy species
    try:
        comp = Composition(token)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):  # pymatgen's ways of saying "no"
        return None
    if not MIN_ELEMENTS <= len(comp.elements) <= MAX_ELEMENTS:
        return None
    if any(abs(amt - round(amt)) > 1e-6 or amt < 1 for amt in comp.values()):
        return None
    reduced = comp.reduced_composition
    if reduced.num_atoms > max_atoms:
        return None
    return reduced.reduced_formula


def parse_formulas(text: str, *, max_atoms: int = MAX_FORMULA_ATOMS) -> list[str]:
    """Reduced formulae found in free text, in order of first appearance, without repeats.

    Accepts real elements (Z <= 94) in whole amounts, 2-8 elements, at most ``max_atoms`` atoms per
    reduced formula; subscript digits are read as digits. The text is never evaluated.
    """
    out: list[str] = []
    for match in _TOKEN.finditer(str(text).translate(_SUBSCRIPTS)):
        formula = _checked_formula(match.group(0), max_atoms)
        if formula is not None and formula not in out:
            out.append(formula)
    return out


def first_number(text: str) -> float | None:
    """The first number written in ``text`` ("8", "7.5/10", "Score: 9"), or None."""
    match = _NUMBER.search(str(text))
    return float(match.group(0)) if match else None


# -- shared rule checks -----------------------------------------------------------------------------
def _hard_checks(known_index: Any) -> list[FormulaHeuristic]:
    from genms_pmg.formulas.heuristics import (
        ChargeNeutral,
        ElementConstraints,
        FamilyRatio,
        Novelty,
        ValidFormula,
    )

    return [ValidFormula(), ChargeNeutral(), FamilyRatio(), ElementConstraints(), Novelty(known_index=known_index)]


def _first_failure(checks: Sequence[FormulaHeuristic], request: Request, proposal: FormulaProposal) -> HeuristicResult | None:
    for check in checks:
        if check.is_hard(request):
            result = check.evaluate(request, proposal)
            if not result.passed:
                return result
    return None


# -- pi_hi ------------------------------------------------------------------------------------------------
class LLMFormulaProposer(FormulaProposer):
    """pi_hi by prompting an LLM with the retrieved family cards and the known formulae to avoid.

    Only formulae that pass the request's hard R_hi checks (valid, charge-neutral, ratio, elements,
    novelty when asked) are kept, in the LLM's order, with a rank prior of 0.9 per place; when fewer
    than ``n`` remain the offline proposer tops the list up (its reasons say so). An endpoint that
    fails or answers nothing usable gives one warning and offline proposals, so the search goes on.

    Args:
        model, base_url, api_key, timeout_s, max_retries, temperature, extra_body: see
            :class:`LLMSettings`; unset ones come from the environment.
        max_tokens: reply length limit; None allows 16 tokens per asked formula plus 48.
        known_in_prompt: how many known formulae of the request's chemistry the prompt lists.
        known_index: object with ``formulas(sources)`` and ``is_known``; defaults to
            ``KnownFormulaIndex.default()`` on first use.
        fallback: proposer for top-ups and fallbacks (default: the offline proposer).
    """

    name = "llm"

    def __init__(
        self, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
        timeout_s: float = 60.0, max_retries: int = 2, temperature: float = 0.7, max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None, known_in_prompt: int = KNOWN_IN_PROMPT, known_index: Any = None,
        fallback: FormulaProposer | None = None,
    ) -> None:
        _require_openai()
        self.settings = LLMSettings.from_env(model=model, base_url=base_url, api_key=api_key, timeout_s=timeout_s,
                                             max_retries=max_retries, temperature=temperature, extra_body=extra_body)
        self.max_tokens = max_tokens
        self.known_in_prompt = known_in_prompt
        self._known_index = known_index
        if fallback is None:
            from genms_pmg.formulas.offline import OfflineFormulaProposer

            fallback = OfflineFormulaProposer(known_index=known_index)
        self.fallback = fallback
        self._chat = _Chat(self.settings)
        self._checks: list[FormulaHeuristic] | None = None
        self._known: dict[tuple, list[str]] = {}
        self._failed: str | None = None  # set after an endpoint error: later calls go offline at once
        self._warned: set[str] = set()
        self.last_prompt: str | None = None
        self.last_reply: str | None = None
        self.last_rejected: list[tuple[str, str]] = []

    @property
    def calls(self) -> int:
        """Requests sent to the endpoint so far."""
        return self._chat.calls

    @property
    def answered(self) -> int:
        """Requests the endpoint answered with a completion (a failed call is a call, not an answer)."""
        return self._chat.answered

    def _index(self) -> Any:
        if self._known_index is None:
            from genms_pmg.data.known import KnownFormulaIndex

            self._known_index = KnownFormulaIndex.default()
        return self._known_index

    def _warn(self, kind: str, message: str) -> None:
        """One warning per kind of trouble and proposer: a search asks up to three times."""
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message, GenMSWarning, stacklevel=3)

    def prompt(self, request: Request, *, n: int, exclude: Collection[str] = ()) -> str:
        """The user message sent for ``request`` (retrieved cards, constraints, formulae to avoid)."""
        from genms_pmg.knowledge.retrieval import retrieve_cards

        cards = [hit.card for hit in retrieve_cards(request, k=3)]
        sources = tuple(request.novelty_sources) or ("mp", "icsd")
        from genms_pmg.data.forget import forgotten

        key = (forgotten(), sources, tuple(request.required_elements), tuple(request.excluded_elements), anion_elements(request),
               target_ratio(request))
        if key not in self._known:  # a search asks up to three times for one request: filter once
            self._known[key] = known_formulas_for(request, self._index().formulas(sources), cap=self.known_in_prompt)
        known = self._known[key]
        avoid = list(dict.fromkeys(display_formula(f) for f in [*sorted(exclude), *known]))
        return build_proposal_prompt(request, n=n, cards=cards, avoid=avoid)

    def propose(
        self, request: Request, *, n: int, seed: int = 0, exclude: Collection[str] = ()
    ) -> list[FormulaProposal]:
        """Up to ``n`` proposals: the LLM's usable formulae first, then offline ones."""
        if n <= 0:
            return []
        excluded = {f for f in (_reduced(x) for x in exclude) if f}
        proposals: list[FormulaProposal] = []
        self.last_reply, self.last_rejected = None, []
        if self._failed is None:
            self.last_prompt = self.prompt(request, n=n, exclude=excluded)
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": self.last_prompt}]
            try:
                self.last_reply = self._chat.complete(messages, max_tokens=self.max_tokens or 16 * n + 48, seed=seed)
            except _EndpointFailure as err:  # the search goes on without the LLM
                self._failed = str(err)
                self._warn("failed", f"LLM {self.settings.model} at {self.settings.base_url} failed ({self._failed}); "
                           "using the offline proposer instead")
            else:
                proposals = self._usable(request, self.last_reply, n=n, excluded=excluded)
                if not proposals:
                    self._warn("unusable", f"LLM {self.settings.model} gave no usable formula for {request.text!r}; "
                               "using offline proposals")
        if len(proposals) < n:
            if self._failed is not None:
                note = f"offline fallback: the LLM failed ({self._failed})"
            else:
                note = f"offline top-up: the LLM gave {len(proposals)} usable formulae of {n} asked"
            taken = excluded | {p.formula for p in proposals}
            for p in self.fallback.propose(request, n=n - len(proposals), seed=seed, exclude=sorted(taken)):
                p.reasons = [note, *p.reasons]
                proposals.append(p)
        return proposals[:n]

    def _usable(self, request: Request, reply: str, *, n: int, excluded: set[str]) -> list[FormulaProposal]:
        if self._checks is None:
            self._checks = _hard_checks(self._known_index)
        out: list[FormulaProposal] = []
        for formula in parse_formulas(reply):
            if formula in excluded:
                continue
            proposal = FormulaProposal(formula=formula, family=request.family, prior=0.9 ** len(out), proposer=self.name,
                                       reasons=[f"proposed by {self.settings.model}"])
            failed = _first_failure(self._checks, request, proposal)
            if failed is not None:
                self.last_rejected.append((formula, f"{failed.name}: {failed.reason}"))
                continue
            out.append(proposal)
            if len(out) >= n:
                break
        return out


def _reduced(formula: str) -> str | None:
    try:
        return Composition(formula).reduced_formula
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):  # pymatgen's ways of saying "no"
        return None


# -- R_hi: LLM ranking ------------------------------------------------------------------------------------
class LLMFormulaRanking(FormulaHeuristic):
    """The paper's LLM R_hi: how likely, 0-10, is a formula to satisfy the request? A soft score.

    Only formulae that pass the hard rule checks are sent (as in the paper); the others, replies
    without a number and an unreachable endpoint get a neutral 0.5 with a reason saying why. Scores
    are clamped to [0, 10], divided by 10 and floored at 0.05 so a single "0" cannot outweigh every
    other check. Replies are cached per (request text, formula). Opt-in: never made by ``create_all``.

    Args:
        model, base_url, api_key, timeout_s, max_retries, temperature, extra_body: see
            :class:`LLMSettings` (temperature defaults to 0 here: a score should not be a dice roll).
        max_tokens: reply length limit.
        known_index: for the novelty rule check; defaults to ``KnownFormulaIndex.default()``.
    """

    name = "llm_rank"
    hard = False
    weight = 1.0
    opt_in = True
    NEUTRAL = 0.5
    FLOOR = 0.05

    def __init__(
        self, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
        timeout_s: float = 30.0, max_retries: int = 1, temperature: float = 0.0, max_tokens: int = 16,
        extra_body: Mapping[str, Any] | None = None, known_index: Any = None,
    ) -> None:
        _require_openai()
        self.settings = LLMSettings.from_env(model=model, base_url=base_url, api_key=api_key, timeout_s=timeout_s,
                                             max_retries=max_retries, temperature=temperature, extra_body=extra_body)
        self.max_tokens = max_tokens
        self._chat = _Chat(self.settings)
        self._checks = _hard_checks(known_index)
        self._cache: dict[tuple[str, str], HeuristicResult] = {}
        self._failed: str | None = None
        self._warned = False

    @property
    def calls(self) -> int:
        """Requests sent to the endpoint so far."""
        return self._chat.calls

    @property
    def answered(self) -> int:
        """Requests the endpoint answered with a completion (a failed call is a call, not an answer)."""
        return self._chat.answered

    def evaluate(self, request: Request, proposal: FormulaProposal) -> HeuristicResult:
        failed = _first_failure(self._checks, request, proposal)
        if failed is not None:
            return HeuristicResult(self.name, True, self.NEUTRAL, f"not ranked by the LLM: {failed.name} fails")
        formula = _reduced(proposal.formula) or proposal.formula
        key = (request.text, formula)
        if key in self._cache:
            return self._cache[key]
        if self._failed is not None:
            return HeuristicResult(self.name, True, self.NEUTRAL, f"LLM unavailable ({self._failed}); neutral score")
        messages = [{"role": "system", "content": RANK_SYSTEM_PROMPT},
                    {"role": "user", "content": rank_prompt(request, formula)}]
        try:
            reply = self._chat.complete(messages, max_tokens=self.max_tokens, seed=0)
        except _EndpointFailure as err:  # the search goes on with a neutral score
            self._failed = str(err)
            if not self._warned:
                self._warned = True
                warnings.warn(f"LLM ranking with {self.settings.model} at {self.settings.base_url} failed "
                              f"({self._failed}); formulae keep a neutral LLM score", GenMSWarning, stacklevel=2)
            return HeuristicResult(self.name, True, self.NEUTRAL, f"LLM unavailable ({self._failed}); neutral score")
        value = first_number(reply)
        model = self.settings.model
        if value is None:
            snippet = " ".join(reply.split())[:40]
            result = HeuristicResult(self.name, True, self.NEUTRAL, f"{model} gave no score ({snippet!r}); neutral score")
        else:
            value = min(max(value, 0.0), 10.0)
            result = HeuristicResult(self.name, True, max(value / 10.0, self.FLOOR),
                                     f"{model} rates {value:g}/10 that it satisfies the request")
        self._cache[key] = result
        return result
