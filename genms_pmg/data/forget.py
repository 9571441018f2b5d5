"""Formulas to treat as unknown everywhere: the rediscovery set-up.

Why one switch instead of an option on every table: a hidden material leaks if any one of the
novelty indexes, the template pool, the family lookup tables, the known-member and substitution
priors, the hull's competing phases or the retrieval examples still knows it. Every data accessor
asks :func:`is_forgotten` (cheap when nothing is forgotten), so ``forgetting(...)`` around a search
or ``--forget FILE`` hides a formula from all of them at once. The proposer may still *propose* a
forgotten formula; nothing may tell it that the formula exists.

The set lives in a :class:`contextvars.ContextVar`, so nested ``with forgetting(...)`` blocks add up
and leave nothing behind; threads started inside a block see an empty set unless they copy the
context (the search runs its data look-ups on the calling thread).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from genms_pmg.errors import UsageError

__all__ = ["forgetting", "forgotten", "is_forgotten", "redact", "read_formula_file", "remembering", "without_forgotten"]

_FORGOTTEN: ContextVar[frozenset[str]] = ContextVar("genms_forgotten", default=frozenset())


def _reduce(formula: str) -> str:
    from genms_pmg.data.oqmd import normalize_formula

    return normalize_formula(formula)


def forgotten() -> frozenset[str]:
    """The reduced formulas forgotten in the current context (empty outside ``forgetting``)."""
    return _FORGOTTEN.get()


def is_forgotten(formula: str) -> bool:
    """Whether ``formula`` (any multiple, any order) is forgotten right now."""
    hidden = _FORGOTTEN.get()
    if not hidden:
        return False
    try:
        return _reduce(formula) in hidden
    except UsageError:
        return False


def redact(text: str) -> str:
    """``text`` with every forgotten formula written in it replaced by "(a hidden compound)"."""
    if not _FORGOTTEN.get():
        return text
    import re

    return re.sub(r"(?<![A-Za-z0-9])(?:[A-Z][a-z]?\d*){2,}(?![A-Za-z0-9])",
                  lambda m: "(a hidden compound)" if is_forgotten(m.group(0)) else m.group(0), text)


def without_forgotten(formulas: Iterable[str]) -> list[str]:
    """``formulas`` less the forgotten ones, order kept."""
    return [f for f in formulas if not is_forgotten(f)]


@contextmanager
def forgetting(formulas: Iterable[str] | None) -> Iterator[frozenset[str]]:
    """Treat ``formulas`` as unknown inside the block (adds to any outer block's set).

    Raises:
        UsageError: an entry is not a chemical formula.
    """
    extra = frozenset(_reduce(f) for f in (formulas or ()))
    token = _FORGOTTEN.set(_FORGOTTEN.get() | extra)
    try:
        yield _FORGOTTEN.get()
    finally:
        _FORGOTTEN.reset(token)


@contextmanager
def remembering() -> Iterator[None]:
    """Nothing forgotten inside the block: for building shared caches that must not depend on it."""
    token = _FORGOTTEN.set(frozenset())
    try:
        yield
    finally:
        _FORGOTTEN.reset(token)


def read_formula_file(path: str | Path, *, what: str = "--forget") -> list[str]:
    """Reduced formulas from a text file: one per line (or comma separated), ``#`` comments.

    Raises:
        UsageError: the file cannot be read or a line is not a formula (names the line).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} file {str(path)!r} ({exc.__class__.__name__}); "
                         "give a text file with one formula per line") from None
    out: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for token in line.split("#", 1)[0].replace(",", " ").split():
            try:
                out.append(_reduce(token))
            except UsageError:
                raise UsageError(f"{what} file {path}, line {lineno}: {token!r} is not a chemical formula; "
                                 "write one formula such as LiMn2O4 per line") from None
    return list(dict.fromkeys(out))
