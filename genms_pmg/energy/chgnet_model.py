"""CHGNet (pretrained 0.3.0 weights, shipped inside the ``chgnet`` package) as a GenMS energy model.

Why CHGNet: it is the universal potential the GenMS paper ranks candidates with, it runs on CPU,
and its weights need no download. Energy-only prediction (``task="e"``) skips the autograd pass
for forces and stress and is several times faster, so ranking uses that path; forces and stress
are only computed by :meth:`CHGNetEnergyModel.calculate` (relaxation, the ASE calculator).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pymatgen.core import Structure

from genms_pmg.energy.base import EnergyModel
from genms_pmg.errors import DataUnavailableError

if TYPE_CHECKING:  # chgnet imports torch: keep ``import genms_pmg`` light
    from chgnet.model import CHGNet

log = logging.getLogger(__name__)

#: The pretrained weights used everywhere (the elemental references were computed with them).
DEFAULT_MODEL_NAME = "0.3.0"
REFERENCES_FILE = "chgnet_elemental_references.json"

_MODELS: dict[tuple[str, str], CHGNet] = {}
_LOCK = threading.Lock()


def load_chgnet(model_name: str = DEFAULT_MODEL_NAME, device: str = "cpu") -> CHGNet:
    """Load the pretrained CHGNet once per process and device (its prints are silenced)."""
    key = (model_name, device)
    with _LOCK:
        if key not in _MODELS:
            with contextlib.redirect_stdout(io.StringIO()):
                from chgnet.model import CHGNet

                model = CHGNet.load(model_name=model_name, use_device=device, verbose=False)
            model.eval()
            _MODELS[key] = model
        return _MODELS[key]


@lru_cache(maxsize=4)
def _load_reference_file(model_name: str) -> dict[str, Any]:
    """Read the shipped reference JSON (computed by ``scripts/make_elemental_references.py``)."""
    try:
        text = resources.files("genms_pmg.energy").joinpath(REFERENCES_FILE).read_text()
    except FileNotFoundError as exc:  # pragma: no cover - packaging error
        raise DataUnavailableError(
            f"{REFERENCES_FILE} is missing from genms_pmg/energy; rebuild it with "
            "scripts/make_elemental_references.py"
        ) from exc
    data = json.loads(text)
    shipped = data.get("model", {}).get("weights")
    if shipped != model_name:
        raise DataUnavailableError(
            f"the shipped CHGNet elemental references were computed with weights {shipped!r}, not "
            f"{model_name!r}; use model_name={shipped!r} or rebuild them with "
            "scripts/make_elemental_references.py"
        )
    return data


class CHGNetEnergyModel(EnergyModel):
    """Pretrained CHGNet: batched energy-only prediction plus forces and stress on demand.

    Args:
        device: torch device ("cpu" by default, so results do not depend on the machine).
        model_name: CHGNet weights ("0.3.0"); the shipped references match only these.
    """

    name: ClassVar[str] = "chgnet"

    def __init__(self, *, device: str = "cpu", model_name: str = DEFAULT_MODEL_NAME) -> None:
        self.device = device
        self.model_name = model_name

    @property
    def model(self) -> CHGNet:
        """The shared CHGNet instance (loaded on first use)."""
        return load_chgnet(self.model_name, self.device)

    def _graph(self, structure: Structure, graph_id: str):
        """CHGNet crystal graph; raises for structures CHGNet cannot treat (isolated atoms)."""
        converter = self.model.graph_converter
        return converter(structure, graph_id=graph_id)

    def predict_energy_per_atom(self, structures: Sequence[Structure], *, batch_size: int = 16) -> np.ndarray:
        """Energy per atom (eV/atom) of each structure; NaN where CHGNet cannot evaluate it.

        A structure that breaks graph building (e.g. an atom with no neighbour within 5 Å) or the
        forward pass gets NaN instead of failing the whole batch, since generators do produce such
        cells and ranking must go on without them.
        """
        structures = list(structures)
        out = np.full(len(structures), np.nan)
        if not structures:
            return out
        model = self.model
        graphs, index = [], []
        for i, structure in enumerate(structures):
            try:
                graphs.append(self._graph(structure, str(i)).to(self.device))
                index.append(i)
            except Exception as exc:  # noqa: BLE001 - any graph failure means "cannot evaluate"
                log.debug("CHGNet cannot build a graph for structure %d: %s", i, exc)
        for start in range(0, len(graphs), max(1, batch_size)):
            chunk, idx = graphs[start : start + batch_size], index[start : start + batch_size]
            try:
                energies = self._energies(model, chunk)
            except Exception as exc:  # noqa: BLE001 - retry one by one to isolate the culprit
                log.debug("CHGNet batch failed (%s); retrying one by one", exc)
                energies = []
                for graph in chunk:
                    try:
                        energies.extend(self._energies(model, [graph]))
                    except Exception:  # noqa: BLE001
                        energies.append(math.nan)
            out[idx] = energies
        out[~np.isfinite(out)] = np.nan
        return out

    @staticmethod
    def _energies(model: CHGNet, graphs: list) -> list[float]:
        """Energy-only forward pass of one batch (eV/atom)."""
        import torch

        with torch.no_grad():
            prediction = model(graphs, task="e")
        return [float(e) for e in prediction["e"].detach().cpu().numpy().reshape(-1)]

    def calculate(self, structure: Structure) -> dict[str, np.ndarray | float]:
        """Energy (eV), forces (eV/Å) and stress (eV/Å^3, Voigt xx yy zz yz xz xy, ASE sign).

        CHGNet's stress is ``1/V dE/dstrain`` in GPa, the same sign convention as ASE, so the
        conversion is the factor ``ase.units.GPa``, as in ``chgnet.model.dynamics.CHGNetCalculator``.

        Raises:
            ValueError: CHGNet cannot build a graph for ``structure`` (e.g. isolated atoms).
        """
        from ase import units
        from ase.stress import full_3x3_to_voigt_6_stress

        graph = self._graph(structure, "calc").to(self.device)
        with warnings.catch_warnings():  # chgnet's own "tensor with requires_grad" notice
            warnings.filterwarnings("ignore", message="Converting a tensor", category=UserWarning)
            prediction = self.model.predict_graph(graph, task="efs")
        n_atoms = len(structure)
        energy = float(np.asarray(prediction["e"]).reshape(())) * n_atoms  # CHGNet is intensive
        forces = np.asarray(prediction["f"], dtype=float).reshape(n_atoms, 3)
        stress = full_3x3_to_voigt_6_stress(np.asarray(prediction["s"], dtype=float) * units.GPa)
        return {"energy": energy, "forces": forces, "stress": np.asarray(stress, dtype=float)}

    def calculate_many(self, structures: Sequence[Structure]) -> list[dict[str, np.ndarray | float]]:
        """:meth:`calculate` for several structures in one batched CHGNet call (relaxation in lockstep)."""
        from ase import units
        from ase.stress import full_3x3_to_voigt_6_stress

        structures = list(structures)
        graphs = [self._graph(s, f"calc{i}").to(self.device) for i, s in enumerate(structures)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Converting a tensor", category=UserWarning)
            predictions = self.model.predict_graph(graphs, task="efs", batch_size=len(graphs))
        if isinstance(predictions, dict):
            predictions = [predictions]
        out = []
        for structure, prediction in zip(structures, predictions):
            n_atoms = len(structure)
            stress = full_3x3_to_voigt_6_stress(np.asarray(prediction["s"], dtype=float) * units.GPa)
            out.append({"energy": float(np.asarray(prediction["e"]).reshape(())) * n_atoms,
                        "forces": np.asarray(prediction["f"], dtype=float).reshape(n_atoms, 3),
                        "stress": np.asarray(stress, dtype=float)})
        return out

    def elemental_references(self) -> dict[str, float]:
        """Per-element CHGNet ground-state energy per atom (eV/atom), from the shipped JSON."""
        data = _load_reference_file(self.model_name)
        return {el: float(v["energy_per_atom"]) for el, v in data["elements"].items()}

    def reference_metadata(self) -> dict[str, Any]:
        """Header of the shipped references: provenance, attribution, script version."""
        return {k: v for k, v in _load_reference_file(self.model_name).items() if k != "elements"}
