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


class PairAttention(nn.Module):
    """Self-attention whose scores and values also see a pair embedding e_ij (no positional encoding).

    The pair embedding is built from the atoms' fractional-coordinate differences, so attention is
    a message pass over the complete periodic graph (as in DiffCSP's CSPNet) and stays order-invariant.
    """

    def __init__(self, dim: int, heads: int, d_pair: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.pair_bias = nn.Linear(d_pair, heads)
        self.pair_value = nn.Linear(heads * d_pair, dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, pair: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, self.head_dim).unbind(2)  # (B, L, H, Dh)
        scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(self.head_dim)
        scores = scores + self.pair_bias(pair).permute(0, 3, 1, 2)
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        attn = self.drop(torch.softmax(scores, dim=-1))
        out = torch.einsum("bhij,bjhd->bihd", attn, v).reshape(b, n, d)
        messages = torch.einsum("bhij,bijc->bihc", attn, pair).reshape(b, n, -1)  # attention-pooled pairs
        return self.out(out + self.pair_value(messages))


class Block(nn.Module):
    """Residual MLP (with the time embedding added) followed by residual masked self-attention."""

    def __init__(self, d_in: int, d_out: int, *, d_time: int, head_dim: int, dropout: float, d_pair: int = 0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_in)
        self.fc1 = nn.Linear(d_in, d_out)
        self.time = nn.Linear(d_time, d_out)
        self.fc2 = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Linear(d_out, d_out))
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()
        self.norm2 = nn.LayerNorm(d_out)
        heads = max(1, d_out // head_dim)
        if d_pair:
            self.attn = PairAttention(d_out, heads, d_pair, dropout)
        else:
            self.attn = nn.MultiheadAttention(d_out, heads, dropout=dropout, batch_first=True)

    def forward(self, h: torch.Tensor, temb: torch.Tensor, pad: torch.Tensor, pair: torch.Tensor | None = None) -> torch.Tensor:
        """h: (B, L, d_in); temb: (B, d_time); pad: (B, L) True where padded; pair: (B, L, L, d_pair)."""
        x = nn.functional.silu(self.fc1(self.norm1(h))) + self.time(temb)[:, None]
        h = self.skip(h) + self.fc2(x)
        q = self.norm2(h)
        if isinstance(self.attn, PairAttention):
            return h + self.attn(q, pair, pad)
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
        pair_dim: width of the pair embedding of fractional-coordinate differences (sin/cos of
            ``fourier`` harmonics) that biases attention scores and values; 0 turns it off (plain
            attention, the first shipped variant). Pairs make the score depend on relative
            positions, which is what a periodic crystal's energy depends on.
        space_groups: number of conditioning classes (231: row 0 is "no space group", rows 1-230
            the space groups); 0 builds an unconditional model (the first shipped ones). The class
            embedding is added to the time embedding and starts at zero, so a conditional model can
            be warm-started from an unconditional one without changing its first predictions.
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
        pair_dim: int = 0,
        space_groups: int = 0,
    ) -> None:
        super().__init__()
        self.config = {
            "width": width, "mults": tuple(mults), "blocks_per_level": blocks_per_level,
            "head_dim": head_dim, "dropout": dropout, "fourier": fourier, "pair_dim": pair_dim,
        }
        if space_groups:
            self.config["space_groups"] = space_groups
        self.fourier, self.pair_dim = fourier, pair_dim
        if pair_dim:
            n_pair = 6 * max(fourier, 1)
            self.pair_mlp = nn.Sequential(nn.Linear(n_pair + 1, pair_dim), nn.SiLU(), nn.Linear(pair_dim, pair_dim))
        d_time = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, d_time), nn.SiLU(), nn.Linear(d_time, d_time))
        self.space_groups = space_groups
        if space_groups:
            self.space_group_embedding = nn.Embedding(space_groups, d_time)
            nn.init.zeros_(self.space_group_embedding.weight)
        self.species = nn.Embedding(NUM_ELEMENTS, width)
        self.coord_in = nn.Linear(6 * fourier if fourier else 3, width)
        self.lattice_in = nn.Linear(6, width)
        self.lattice_type = nn.Parameter(torch.zeros(width))
        kw = {"d_time": d_time, "head_dim": head_dim, "dropout": dropout, "d_pair": pair_dim}
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

    def _pair_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1+A, 1+A, pair_dim): harmonics of x_j - x_i for atom pairs; a flag marks lattice-token pairs."""
        b, a, _ = x.shape
        k = torch.arange(1, max(self.fourier, 1) + 1, device=x.device, dtype=x.dtype)
        ang = 2 * math.pi * (x[:, None, :, :] - x[:, :, None, :])[..., None] * k  # (B, A, A, 3, K)
        feats = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1).flatten(-2)
        full = x.new_zeros(b, a + 1, a + 1, feats.shape[-1] + 1)
        full[:, 1:, 1:, :-1] = feats
        full[:, 0, :, -1] = 1.0
        full[:, :, 0, -1] = 1.0
        return self.pair_mlp(full)

    def _coord_features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fourier:
            return x
        k = torch.arange(1, self.fourier + 1, device=x.device, dtype=x.dtype)
        ang = 2 * math.pi * x[..., None] * k  # (B, A, 3, K)
        return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1).flatten(-2)

    def forward(
        self, x: torch.Tensor, lattice: torch.Tensor, atomic_numbers: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
        space_group: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, A, 3) noisy coords; lattice: (B, 6); atomic_numbers, mask: (B, A); t: (B,) in [0, 1];
        space_group: (B,) long, 0 for "unconditional" (ignored by an unconditional model)."""
        temb = self.time_mlp(timestep_embedding(t, self.config["width"]))
        if self.space_groups and space_group is not None:
            temb = temb + self.space_group_embedding(space_group.clamp(0, self.space_groups - 1))
        species = self.species((atomic_numbers - 1).clamp(0, NUM_ELEMENTS - 1))
        atoms = self.coord_in(self._coord_features(x)) + species
        lat = (self.lattice_in(lattice) + self.lattice_type)[:, None]
        h = torch.cat([lat, atoms], dim=1)
        pad = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
        pair = self._pair_features(x) if self.pair_dim else None
        skips = []
        for block in self.down:
            h = block(h, temb, pad, pair)
            skips.append(h)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=-1), temb, pad, pair)
        h = self.out_norm(h)
        eps_x = self.coord_out(h[:, 1:]) * mask[..., None]
        return eps_x, self.lattice_out(h[:, 0])
