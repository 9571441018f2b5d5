"""pi_lo by diffusion: sample crystals for a composition from the trained compact-representation model."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pymatgen.core import Composition

from genms_pmg.errors import DataUnavailableError
from genms_pmg.structures.base import CrystalGenerator, GeneratedStructure

__all__ = ["DEFAULT_WEIGHTS", "DiffusionGenerator"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "model.pt"


class DiffusionGenerator(CrystalGenerator):
    """Samples structures with the diffusion model, the number of formula units drawn from a prior.

    Args:
        weights: checkpoint written by :class:`DiffusionTrainer` (EMA weights are used).
        steps: denoising steps (a subsequence of the model's T training steps), for either sampler.
        sampler: ``"ddim"`` (fast, deterministic given the start) or ``"full"`` (predictor-corrector).
        device: torch device for sampling.
    """

    name: ClassVar[str] = "diffusion"

    def __init__(
        self,
        *,
        weights: str | Path | None = None,
        steps: int = 50,
        sampler: Literal["ddim", "full"] = "ddim",
        device: str = "cpu",
    ) -> None:
        from genms_pmg.structures.diffusion.trainer import load_diffusion

        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        if not path.exists():
            raise DataUnavailableError(
                f"diffusion model not trained yet ({path} missing): train one with "
                "genms_pmg.structures.diffusion.DiffusionTrainer and pass weights=<checkpoint.pt>"
            )
        self.model, self.stats = load_diffusion(path)
        self.model.to(device)
        self.steps, self.sampler, self.device = steps, sampler, torch.device(device)

    def _choose_z(self, atoms_per_fu: int, limit: int, n: int, rng: np.random.Generator) -> list[int]:
        """Draw Z for each structure from the training histogram of atom counts (add-one smoothed)."""
        zs = np.arange(1, limit // atoms_per_fu + 1)
        hist = np.asarray(self.stats.natoms_hist, dtype=float)
        weights = hist[zs * atoms_per_fu] + 1.0
        return rng.choice(zs, size=n, p=weights / weights.sum()).tolist()

    def generate(
        self,
        composition: Composition,
        *,
        n: int,
        seed: int = 0,
        family: str | None = None,
        max_atoms: int | None = None,
    ) -> list[GeneratedStructure]:
        """Sample ``n`` structures of ``composition`` in one batch (``family`` is not used yet)."""
        reduced, _ = Composition(composition).get_reduced_composition_and_factor()
        amounts = {el: reduced[el] for el in reduced.elements}
        if n <= 0 or any(abs(a - round(a)) > 1e-6 for a in amounts.values()):
            return []
        per_fu = round(sum(amounts.values()))
        limit = min(max_atoms or self.stats.max_atoms, self.stats.max_atoms)
        if per_fu > limit:
            return []
        rng = np.random.default_rng(seed)
        z_list = self._choose_z(per_fu, limit, n, rng)
        unit = [el.Z for el, a in amounts.items() for _ in range(round(a))]
        return self._sample([sorted(unit * z) for z in z_list], seed=seed, z_list=z_list)

    def generate_cell(self, cell: Composition, *, n: int, seed: int = 0) -> list[GeneratedStructure]:
        """``n`` structures holding exactly the atoms of ``cell`` (the CSP benchmark's setting)."""
        cell = Composition(cell)
        numbers = sorted(el.Z for el, a in cell.items() for _ in range(round(a)))
        if n <= 0 or not numbers or len(numbers) > self.stats.max_atoms:
            return []
        z = int(round(cell.get_reduced_composition_and_factor()[1]))
        return self._sample([numbers] * n, seed=seed, z_list=[z] * n)

    def _sample(self, cells: list[list[int]], *, seed: int, z_list: list[int]) -> list[GeneratedStructure]:
        """Sample one structure per list of atomic numbers, all in one batch."""
        from genms_pmg.structures.diffusion.representation import tensors_to_structures

        n = len(cells)
        numbers = torch.zeros(n, self.stats.max_atoms, dtype=torch.long)
        mask = torch.zeros(n, self.stats.max_atoms, dtype=torch.bool)
        for i, row in enumerate(cells):
            numbers[i, : len(row)] = torch.as_tensor(row)
            mask[i, : len(row)] = True
        x, lat = self.model.sample(
            numbers.to(self.device), mask.to(self.device), steps=self.steps, sampler=self.sampler, seed=seed
        )
        structures = tensors_to_structures(x, numbers, mask, lat, self.stats)
        steps = min(self.steps, self.model.T)
        return [
            GeneratedStructure(
                s, self.name, {"generator": self.name, "Z": int(z), "steps": steps, "sampler": self.sampler}
            )
            for s, z in zip(structures, z_list)
        ]
