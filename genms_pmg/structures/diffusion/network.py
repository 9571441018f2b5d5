"""The denoising network: per-atom MLP + masked self-attention blocks in a U-Net of widths.

Atoms carry no positional encoding, so the network is permutation-equivariant over atoms. The
lattice is one extra token that joins attention: atoms and lattice then condition each other in
every block (a global MLP path would only see the lattice through a pooled summary), and the
token is told apart from atoms by its own input projection and a learnt type embedding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genms_pmg.structures.diffusion.representation import NUM_ELEMENTS

__all__ = ["CrystalDenoiser", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of continuous times ``t`` in [0, 1] (scaled by 1000 like DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return nn.functional.pad(emb, (0, dim % 2))


class Block(nn.Module):
    """Residual MLP (with the time embedding added) followed by residual masked self-attention."""

    def __init__(self, d_in: int, d_out: int, *, d_time: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_in)
        self.fc1 = nn.Linear(d_in, d_out)
        self.time = nn.Linear(d_time, d_out)
        self.fc2 = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Linear(d_out, d_out))
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()
        self.norm2 = nn.LayerNorm(d_out)
        heads = max(1, d_out // head_dim)
        self.attn = nn.MultiheadAttention(d_out, heads, dropout=dropout, batch_first=True)

    def forward(self, h: torch.Tensor, temb: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """h: (B, L, d_in); temb: (B, d_time); pad: (B, L) True where padded."""
        x = nn.functional.silu(self.fc1(self.norm1(h))) + self.time(temb)[:, None]
        h = self.skip(h) + self.fc2(x)
        q = self.norm2(h)
        a, _ = self.attn(q, q, q, key_padding_mask=pad, need_weights=False)
        return h + a


class CrystalDenoiser(nn.Module):
    """Predicts the coordinate noise/score (B, A, 3) and lattice noise (B, 6).

    Args:
        width: base hidden width.
        mults: width multipliers per level; the down path grows through them and the up path
            comes back with concatenated skip connections (the atom axis is never resampled).
        blocks_per_level: blocks per level on each path.
        head_dim: attention head size (heads = width // head_dim; 64 as in Table 8).
        dropout: dropout in MLPs and attention.
        fourier: number of sin/cos harmonics of the fractional coordinates fed in; 0 feeds raw
            coordinates (for the naive, non-periodic baseline). Harmonics make the input a smooth
            function on the torus.
    """

    def __init__(
        self,
        *,
        width: int = 128,
        mults: tuple[int, ...] = (1, 2, 4),
        blocks_per_level: int = 2,
        head_dim: int = 64,
        dropout: float = 0.1,
        fourier: int = 4,
    ) -> None:
        super().__init__()
        self.config = {
            "width": width, "mults": tuple(mults), "blocks_per_level": blocks_per_level,
            "head_dim": head_dim, "dropout": dropout, "fourier": fourier,
        }
        self.fourier = fourier
        d_time = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, d_time), nn.SiLU(), nn.Linear(d_time, d_time))
        self.species = nn.Embedding(NUM_ELEMENTS, width)
        self.coord_in = nn.Linear(6 * fourier if fourier else 3, width)
        self.lattice_in = nn.Linear(6, width)
        self.lattice_type = nn.Parameter(torch.zeros(width))
        kw = {"d_time": d_time, "head_dim": head_dim, "dropout": dropout}
        self.down = nn.ModuleList()
        skips, d = [], width
        for m in mults:
            for _ in range(blocks_per_level):
                self.down.append(Block(d, width * m, **kw))
                d = width * m
                skips.append(d)
        self.up = nn.ModuleList()
        for m in reversed(mults):
            for _ in range(blocks_per_level):
                self.up.append(Block(d + skips.pop(), width * m, **kw))
                d = width * m
        self.out_norm = nn.LayerNorm(d)
        self.coord_out = nn.Linear(d, 3)
        self.lattice_out = nn.Linear(d, 6)
        for layer in (self.coord_out, self.lattice_out):  # start as a zero predictor: stabler early loss
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _coord_features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fourier:
            return x
        k = torch.arange(1, self.fourier + 1, device=x.device, dtype=x.dtype)
        ang = 2 * math.pi * x[..., None] * k  # (B, A, 3, K)
        return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1).flatten(-2)

    def forward(
        self, x: torch.Tensor, lattice: torch.Tensor, atomic_numbers: torch.Tensor, mask: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, A, 3) noisy coords; lattice: (B, 6); atomic_numbers, mask: (B, A); t: (B,) in [0, 1]."""
        temb = self.time_mlp(timestep_embedding(t, self.config["width"]))
        species = self.species((atomic_numbers - 1).clamp(0, NUM_ELEMENTS - 1))
        atoms = self.coord_in(self._coord_features(x)) + species
        lat = (self.lattice_in(lattice) + self.lattice_type)[:, None]
        h = torch.cat([lat, atoms], dim=1)
        pad = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
        skips = []
        for block in self.down:
            h = block(h, temb, pad)
            skips.append(h)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=-1), temb, pad)
        h = self.out_norm(h)
        eps_x = self.coord_out(h[:, 1:]) * mask[..., None]
        return eps_x, self.lattice_out(h[:, 0])
