"""Compact-representation crystal diffusion (GenMS section 2.3): representation, network,
diffusion process, trainer and the ``diffusion`` structure generator."""

from __future__ import annotations

from genms_pmg.structures.diffusion.diffusion import (
    CrystalDiffusion,
    cosine_alpha_bar,
    geometric_sigmas,
)
from genms_pmg.structures.diffusion.generator import DiffusionGenerator
from genms_pmg.structures.diffusion.network import CrystalDenoiser
from genms_pmg.structures.diffusion.representation import (
    CrystalBatch,
    LatticeStats,
    load_structures_csv,
    structures_to_batch,
    tensors_to_structures,
)
from genms_pmg.structures.diffusion.trainer import DiffusionTrainer, load_diffusion

__all__ = [
    "CrystalBatch", "CrystalDenoiser", "CrystalDiffusion", "DiffusionGenerator", "DiffusionTrainer",
    "LatticeStats", "cosine_alpha_bar", "geometric_sigmas", "load_diffusion", "load_structures_csv",
    "structures_to_batch", "tensors_to_structures",
]
