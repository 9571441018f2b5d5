"""Wyckoff-skeleton sampling: keep diffusion samples on a template's symmetry (the DiffCSP++ idea).

DiffCSP++ (Jiao et al. 2024) diffuses only a template's free Wyckoff parameters and the lattice
parameters its crystal system leaves free. This module gets the same constraint by projection:
at every denoising step the model's estimate of the clean crystal is mapped onto the template's
symmetric subspace (the group average, or Reynolds operator, of the atom positions under the
template's space-group operations, and of the lattice metric under its rotations). Fixed Wyckoff
positions (spinel 8a, perovskite 1a) therefore come out exact, free ones (spinel O 32e x, pyrochlore
O 48f x) are chosen by the model, and the cell keeps the template's crystal system. Projection keeps
the trained network unchanged (no retraining for a new parameterisation), at the price of the network
seeing noisy states off the skeleton, as in training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from genms_pmg.structures.diffusion.representation import LatticeStats

__all__ = ["WyckoffSkeleton"]


class WyckoffSkeleton:
    """A template cell's space-group operations, the atom permutation each induces, and its metric constraint.

    Args:
        template: the cell whose symmetry samples keep; its species order is the sample's atom order.
        stats: the model's lattice normalisation (to move between the 6-number lattice and a metric).
        symprec: spglib tolerance (loose by default: relaxed DFT cells are slightly off ideal).

    Raises:
        ValueError: when an operation does not map the template's atoms onto atoms of the same species
            (the tolerance is too loose for this cell).
    """

    def __init__(self, template: Structure, stats: LatticeStats, *, symprec: float = 0.1) -> None:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        dataset = SpacegroupAnalyzer(template, symprec=symprec).get_symmetry_dataset()
        rotations = np.asarray(dataset.rotations, dtype=float)
        translations = np.asarray(dataset.translations, dtype=float)
        frac = np.mod(template.frac_coords, 1.0)
        species = np.array([site.specie.Z for site in template])
        perms = []
        for rot, trans in zip(rotations, translations):
            images = frac @ rot.T + trans
            delta = images[:, None, :] - frac[None, :, :]
            dist = np.linalg.norm((delta - np.round(delta)) @ template.lattice.matrix, axis=-1)
            dist[species[:, None] != species[None, :]] = np.inf
            perm = dist.argmin(1)
            if not np.all(np.isfinite(dist[np.arange(len(frac)), perm])) or len(set(perm.tolist())) != len(frac):
                raise ValueError(f"symmetry operations of {template.composition.reduced_formula} do not permute its atoms "
                                 f"at symprec={symprec}; use a tighter tolerance")
            perms.append(perm)
        perms = np.stack(perms)
        n = len(frac)
        rep = np.full(n, -1)
        op_of = np.zeros(n, dtype=int)
        for r in range(n):
            if rep[r] >= 0:
                continue
            for g in range(len(rotations)):  # spglib lists the identity first, so r maps to itself by it
                j = perms[g, r]
                if rep[j] < 0:
                    rep[j], op_of[j] = r, g
        site_projector = np.zeros((n, 3, 3))
        anchor = np.zeros((n, 3))
        for r in set(rep.tolist()):
            stabiliser = [g for g in range(len(rotations)) if perms[g, r] == r]
            site_projector[r] = np.mean(rotations[stabiliser], axis=0)  # onto the site's free directions
            images = frac[r] @ rotations[stabiliser].transpose(0, 2, 1) + translations[stabiliser] - frac[r]
            anchor[r] = frac[r] + np.mean(images - np.round(images), axis=0)  # the ideal special position
        same_orbit = (rep[:, None] == rep[None, :]).astype(float)
        self.template = template
        self.stats = stats
        self.space_group = int(dataset.number)
        self.atomic_numbers = species.tolist()
        self.orbits = len(set(rep.tolist()))
        self._rep = torch.tensor(rep, dtype=torch.long)
        self._rot = torch.tensor(rotations[op_of], dtype=torch.float32)  # (N, 3, 3): representative -> atom
        self._inv_rot = torch.tensor(np.linalg.inv(rotations[op_of]), dtype=torch.float32)
        self._trans = torch.tensor(translations[op_of], dtype=torch.float32)
        self._projector = torch.tensor(site_projector[rep], dtype=torch.float32)
        self._anchor = torch.tensor(anchor[rep], dtype=torch.float32)
        self._orbit_mean = torch.tensor(same_orbit / same_orbit.sum(1, keepdims=True), dtype=torch.float32)
        self._rot64 = rotations

    def __len__(self) -> int:
        return len(self.atomic_numbers)

    def project_coords(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, N, 3) fractional coordinates onto the skeleton: exactly symmetric for any input.

        Each atom j of an orbit gives an estimate of its representative's position (by the inverse
        of the operation that generates j); each estimate is projected onto the representative's
        free directions (the mean of its site-symmetry rotations), the estimates are averaged on the
        torus, and the orbit is regenerated from the average by the space-group operations.
        """
        estimate = torch.einsum("nab,knb->kna", self._inv_rot, x - self._trans)
        offset = estimate - self._anchor
        offset = torch.einsum("nab,knb->kna", self._projector, offset - torch.round(offset))
        ref = offset[:, self._rep]
        spread = offset - ref
        spread = spread - torch.round(spread)
        free = ref + torch.einsum("jn,kna->kja", self._orbit_mean, spread)
        free = torch.einsum("nab,knb->kna", self._projector, free)
        position = self._anchor + free
        return torch.remainder(torch.einsum("nab,knb->kna", self._rot, position) + self._trans, 1.0)

    def project_lattice(self, lattice: torch.Tensor) -> torch.Tensor:
        """Project (B, 6) normalised lattices onto metrics invariant under the template's rotations."""
        mean, std = np.asarray(self.stats.mean), np.asarray(self.stats.std)
        raw = lattice.detach().cpu().double().numpy() * std + mean
        out = np.empty_like(raw)
        n = len(self)
        for i, row in enumerate(raw):
            ratios = np.exp(np.clip(row[:3], -3.0, 3.0))
            angles = np.clip(np.degrees(row[3:]), 30.0, 150.0)
            try:
                matrix = Lattice.from_parameters(*ratios, *angles).matrix
            except Exception:  # noqa: BLE001 - an impossible angle triple: start from its right-angled cell
                matrix = Lattice.from_parameters(*ratios, 90.0, 90.0, 90.0).matrix
            if not np.all(np.isfinite(matrix)):
                matrix = Lattice.from_parameters(*ratios, 90.0, 90.0, 90.0).matrix
            metric = matrix @ matrix.T
            metric = np.mean([r.T @ metric @ r for r in self._rot64], axis=0)
            lengths = np.sqrt(np.diag(metric))
            cosines = [metric[1, 2] / (lengths[1] * lengths[2]), metric[0, 2] / (lengths[0] * lengths[2]),
                       metric[0, 1] / (lengths[0] * lengths[1])]
            volume = math.sqrt(max(np.linalg.det(metric), 1e-12))
            scale = (volume / n) ** (1.0 / 3.0)
            out[i, :3] = np.log(lengths / scale)
            out[i, 3:] = np.arccos(np.clip(cosines, -1.0, 1.0))
        return torch.as_tensor((out - mean) / std, dtype=lattice.dtype, device=lattice.device)

    def __call__(self, x: torch.Tensor, lattice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The projection :meth:`CrystalDiffusion.sample` applies to its clean-state estimate."""
        x = self.project_coords(x)
        return x, self.project_lattice(lattice)
