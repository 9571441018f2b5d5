"""A crystal as fixed-size tensors: fractional coordinates, atomic numbers, a 6-number lattice.

The lattice is stored as shape only: log(length / (V/N)^(1/3)) and angles in radians, each
standardised with statistics of the training data. The absolute scale is restored on decoding
from per-element atomic volumes fitted to the same data, so the model never has to learn density
(a composition-level property) and the 6 numbers are comparable across cell sizes.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

__all__ = [
    "CrystalBatch",
    "LatticeStats",
    "load_structures_csv",
    "space_group_number",
    "structures_to_batch",
    "tensors_to_structures",
]

log = logging.getLogger(__name__)
NUM_ELEMENTS = 100  # atomic numbers 1..100 -> embedding rows 0..99


@dataclass
class CrystalBatch:
    """Padded tensors of a batch of crystals.

    Attributes:
        frac: (B, A, 3) fractional coordinates in [0, 1); zero on padding.
        atomic_numbers: (B, A) long; zero on padding.
        mask: (B, A) bool, True on real atoms.
        lattice: (B, 6) normalised lattice (see :class:`LatticeStats`).
        space_group: (B,) long space-group numbers (0 = unknown), the class a conditional model sees.
    """

    frac: torch.Tensor
    atomic_numbers: torch.Tensor
    mask: torch.Tensor
    lattice: torch.Tensor
    space_group: torch.Tensor | None = None

    def _tensors(self) -> tuple:
        sg = self.space_group if self.space_group is not None else torch.zeros(len(self), dtype=torch.long)
        return self.frac, self.atomic_numbers, self.mask, self.lattice, sg

    def index(self, idx: torch.Tensor) -> CrystalBatch:
        """Select rows, e.g. a random minibatch of a dataset held as one batch."""
        return CrystalBatch(*(t[idx] for t in self._tensors()))

    def to(self, device: torch.device | str) -> CrystalBatch:
        """Move every tensor to ``device``."""
        return CrystalBatch(*(t.to(device) for t in self._tensors()))

    def cropped(self) -> CrystalBatch:
        """Drop padding columns no row uses (atoms are packed at the front), so a batch of small
        cells costs what its largest cell needs rather than ``max_atoms``."""
        n = max(int(self.mask.sum(1).max()), 1)
        f, z, m, lat, sg = self._tensors()
        return CrystalBatch(f[:, :n], z[:, :n], m[:, :n], lat, sg)

    def __len__(self) -> int:
        return self.frac.shape[0]


def _raw_lattice(structure: Structure) -> np.ndarray:
    """Un-standardised 6-vector: log(length / (V/N)^(1/3)) x3, angles in radians x3."""
    lat = structure.lattice
    scale = (lat.volume / len(structure)) ** (1.0 / 3.0)
    lengths = np.log(np.asarray(lat.abc) / scale)
    return np.concatenate([lengths, np.radians(lat.angles)])


@dataclass
class LatticeStats:
    """Normalisation statistics and priors learnt from training data, stored with the model.

    Attributes:
        mean, std: per-component statistics of the raw lattice 6-vector.
        atom_volumes: (100,) fitted volume per atom of each element (A^3); fills unseen ones with
            the mean, so decoding works for any element.
        natoms_hist: counts of structures with 0..max_atoms sites, the prior for choosing Z.
        max_atoms: padding size.
    """

    mean: list[float]
    std: list[float]
    atom_volumes: list[float]
    natoms_hist: list[int]
    max_atoms: int = 20
    extra: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, structures: list[Structure], *, max_atoms: int = 20) -> LatticeStats:
        """Compute the statistics from training structures (volumes by least squares)."""
        raw = np.stack([_raw_lattice(s) for s in structures])
        counts = np.zeros((len(structures), NUM_ELEMENTS))
        volumes = np.array([s.volume for s in structures])
        hist = np.zeros(max_atoms + 1, dtype=int)
        for i, s in enumerate(structures):
            hist[min(len(s), max_atoms)] += 1
            for site in s:
                z = site.specie.Z
                if 1 <= z <= NUM_ELEMENTS:
                    counts[i, z - 1] += 1
        mean_v = float(volumes.sum() / counts.sum())
        seen = counts.sum(0) > 0
        fit, *_ = np.linalg.lstsq(counts[:, seen], volumes, rcond=None)
        atom_vol = np.full(NUM_ELEMENTS, mean_v)
        atom_vol[seen] = np.where(fit > 0.5, fit, mean_v)  # guard against degenerate fits
        return cls(
            mean=raw.mean(0).tolist(),
            std=np.maximum(raw.std(0), 1e-3).tolist(),
            atom_volumes=atom_vol.tolist(),
            natoms_hist=hist.tolist(),
            max_atoms=max_atoms,
        )

    def to_dict(self) -> dict:
        """Plain dict for a checkpoint."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> LatticeStats:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)

    def volume(self, atomic_numbers: list[int]) -> float:
        """Predicted cell volume (A^3) of a cell holding these atoms."""
        return float(sum(self.atom_volumes[min(max(z, 1), NUM_ELEMENTS) - 1] for z in atomic_numbers))


def space_group_number(structure: Structure, *, symprec: float = 0.1) -> int:
    """spglib's space-group number at a loose tolerance (relaxed DFT cells are slightly off); 1 on failure."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:  # noqa: BLE001 - spglib fails on degenerate cells: treat them as P1
        return 1


def structures_to_batch(structures: list[Structure], stats: LatticeStats, *, space_groups: bool = False) -> CrystalBatch:
    """Encode structures (each with at most ``stats.max_atoms`` sites) as a padded batch.

    ``space_groups=True`` also finds each structure's space group (for a conditional model).
    """
    b, a = len(structures), stats.max_atoms
    frac = torch.zeros(b, a, 3)
    numbers = torch.zeros(b, a, dtype=torch.long)
    mask = torch.zeros(b, a, dtype=torch.bool)
    mean, std = np.asarray(stats.mean), np.asarray(stats.std)
    lattice = torch.zeros(b, 6)
    for i, s in enumerate(structures):
        if len(s) > a:
            raise ValueError(f"structure {s.formula} has {len(s)} sites > max_atoms={a}")
        n = len(s)
        frac[i, :n] = torch.as_tensor(np.mod(s.frac_coords, 1.0) % 1.0, dtype=torch.float32)
        numbers[i, :n] = torch.as_tensor([site.specie.Z for site in s])
        mask[i, :n] = True
        lattice[i] = torch.as_tensor((_raw_lattice(s) - mean) / std, dtype=torch.float32)
    frac = torch.where(frac >= 1.0, torch.zeros_like(frac), frac)
    sg = torch.tensor([space_group_number(s) for s in structures] if space_groups else [0] * b, dtype=torch.long)
    return CrystalBatch(frac, numbers, mask, lattice, sg)


def tensors_to_structures(
    frac: torch.Tensor, atomic_numbers: torch.Tensor, mask: torch.Tensor, lattice: torch.Tensor, stats: LatticeStats
) -> list[Structure]:
    """Decode model outputs into Structures, scaling each cell to the fitted volume."""
    mean, std = np.asarray(stats.mean), np.asarray(stats.std)
    out = []
    for i in range(frac.shape[0]):
        m = mask[i].cpu().numpy().astype(bool)
        numbers = atomic_numbers[i].cpu().numpy()[m].tolist()
        raw = lattice[i].detach().cpu().double().numpy() * std + mean
        ratios = np.exp(np.clip(raw[:3], -3.0, 3.0))
        angles = np.clip(np.degrees(raw[3:]), 30.0, 150.0)
        lat = Lattice.from_parameters(*ratios, *angles)
        if not (math.isfinite(lat.volume) and lat.volume > 1e-6):
            lat = Lattice.from_parameters(*ratios, 90.0, 90.0, 90.0)  # impossible angle triple
        lat = lat.scale(stats.volume(numbers))
        coords = frac[i].detach().cpu().double().numpy()[m] % 1.0
        out.append(Structure(lat, numbers, coords))
    return out


def load_structures_csv(
    path: str | Path, *, max_atoms: int = 20, limit: int | None = None, niggli: bool = False,
    keep_columns: tuple[str, ...] = (),
) -> list[Structure]:
    """Read a CSV(.gz) with a ``cif`` column (MP-20 / OQMD-ICSD layout) into Structures.

    Rows whose CIF does not parse are skipped and counted (one warning), as are structures with
    more than ``max_atoms`` sites (counted in the log only: they are expected, not errors).

    Args:
        path: the CSV file, gzip-compressed when its name ends in ``.gz``.
        max_atoms: keep only structures with at most this many sites.
        limit: stop after this many kept structures (fast tests, quick experiments).
        niggli: replace each cell by its Niggli-reduced equivalent. One crystal has many cells
            (a hexagonal cell with gamma 120 or 60 degrees, rhombohedral 40 or 70 degrees); training on
            one canonical choice removes that spurious multimodality from the lattice the model learns.
        keep_columns: CSV columns copied into each structure's ``properties`` (e.g. ``proto_name``).
    """
    from pymatgen.io.cif import CifParser

    path = Path(path)
    csv.field_size_limit(1 << 30)
    opener = gzip.open if path.suffix == ".gz" else open
    kept: list[Structure] = []
    bad = too_big = 0
    with opener(path, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "cif" not in reader.fieldnames:
            raise ValueError(f"{path} has no 'cif' column (columns: {reader.fieldnames})")
        for row in reader:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s = CifParser(io.StringIO(row["cif"])).parse_structures(primitive=False)[0]
            except Exception:  # noqa: BLE001 - any malformed CIF is skipped and counted
                bad += 1
                continue
            if len(s) > max_atoms:
                too_big += 1
                continue
            if niggli:
                s = s.get_reduced_structure("niggli")
            for column in keep_columns:
                s.properties[column] = row.get(column)
            kept.append(s)
            if limit is not None and len(kept) >= limit:
                break
    if bad:
        warnings.warn(f"{path.name}: skipped {bad} rows whose CIF could not be parsed", stacklevel=2)
    log.info("%s: kept %d structures, %d over %d atoms, %d unparseable", path.name, len(kept), too_big, max_atoms, bad)
    return kept
