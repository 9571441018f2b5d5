"""The diffusion process: noising, loss and samplers for coordinates on a torus and the lattice.

Coordinates (``coords="wrapped"``, default) follow DiffCSP: variance-exploding wrapped-normal noise
x_t = frac(x0 + sigma_t * eps) with a geometric sigma schedule; the network predicts the score of
the wrapped normal divided by its root-mean-square, and sampling is predictor-corrector. The
``"naive"`` option runs plain DDPM on coordinates as real numbers, wrapped only at the end, as the
baseline a benchmark can compare against. The lattice always uses DDPM with the cosine schedule.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from genms_pmg.structures.diffusion.network import CrystalDenoiser
from genms_pmg.structures.diffusion.representation import CrystalBatch

__all__ = ["CrystalDiffusion", "cosine_alpha_bar", "geometric_sigmas", "wrapped_normal_score"]


def cosine_alpha_bar(timesteps: int, *, s: float = 0.008) -> torch.Tensor:
    """alpha_bar_t for t = 0..T (Nichol & Dhariwal), with betas clipped at 0.999."""
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def geometric_sigmas(timesteps: int, *, sigma_min: float = 0.005, sigma_max: float = 0.5) -> torch.Tensor:
    """sigma_t for t = 0..T, geometric from sigma_min to sigma_max (sigma_0 = 0)."""
    s = torch.exp(torch.linspace(math.log(sigma_min), math.log(sigma_max), timesteps, dtype=torch.float64))
    return torch.cat([torch.zeros(1, dtype=torch.float64), s])


def wrapped_normal_score(x: torch.Tensor, sigma: torch.Tensor, *, n: int = 10) -> torch.Tensor:
    """d/dx log sum_k N(x + k; 0, sigma^2): the score of a wrapped normal of period 1."""
    k = torch.arange(-n, n + 1, device=x.device, dtype=x.dtype)
    d = x[..., None] + k
    logw = -(d**2) / (2 * sigma[..., None] ** 2)
    w = torch.softmax(logw, dim=-1)
    return -(w * d).sum(-1) / sigma**2


def _score_norms(sigmas: torch.Tensor, *, grid: int = 4001) -> torch.Tensor:
    """E[score^2] under the wrapped normal for each sigma, by quadrature on one period."""
    x = torch.linspace(-0.5, 0.5, grid, dtype=torch.float64)[:-1]
    out = torch.ones_like(sigmas)
    for i, s in enumerate(sigmas.tolist()):
        if s <= 0:
            continue
        if s < 0.1:  # wrapping negligible: closed form
            out[i] = 1.0 / s**2
            continue
        sig = torch.full_like(x, s)
        k = torch.arange(-10, 11, dtype=torch.float64)
        p = torch.exp(-((x[:, None] + k) ** 2) / (2 * s**2)).sum(-1)
        p = p / p.sum()
        out[i] = (p * wrapped_normal_score(x, sig) ** 2).sum()
    return out


class CrystalDiffusion(nn.Module):
    """Wraps a :class:`CrystalDenoiser` with the forward process, the loss and samplers.

    Args:
        network: the denoiser.
        timesteps: number of discrete diffusion steps T.
        coords: ``"wrapped"`` (torus-aware, DiffCSP) or ``"naive"`` (DDPM on real numbers).
        sigma_min, sigma_max: range of the geometric coordinate noise schedule.
        lattice_weight: weight of the lattice term in the loss.
        corrector_lr: Langevin corrector step scale of the full sampler (DiffCSP's step_lr).
    """

    def __init__(
        self,
        network: CrystalDenoiser,
        *,
        timesteps: int = 1000,
        coords: Literal["wrapped", "naive"] = "wrapped",
        sigma_min: float = 0.005,
        sigma_max: float = 0.5,
        lattice_weight: float = 1.0,
        corrector_lr: float = 1e-5,
    ) -> None:
        super().__init__()
        if coords not in ("wrapped", "naive"):
            raise ValueError(f"coords must be 'wrapped' or 'naive', not {coords!r}")
        self.network = network
        self.config = {
            "timesteps": timesteps, "coords": coords, "sigma_min": sigma_min, "sigma_max": sigma_max,
            "lattice_weight": lattice_weight, "corrector_lr": corrector_lr,
        }
        self.T, self.coords, self.lattice_weight, self.corrector_lr = timesteps, coords, lattice_weight, corrector_lr
        sigmas = geometric_sigmas(timesteps, sigma_min=sigma_min, sigma_max=sigma_max)
        self.register_buffer("alpha_bar", cosine_alpha_bar(timesteps).float(), persistent=False)
        self.register_buffer("sigmas", sigmas.float(), persistent=False)
        self.register_buffer("score_norm", _score_norms(sigmas).float(), persistent=False)

    # -- training -----------------------------------------------------------------------------
    def q_sample(self, batch: CrystalBatch, t: torch.Tensor, eps_x: torch.Tensor, eps_l: torch.Tensor):
        """Noise a batch to integer times ``t`` (B,): returns (x_t, lattice_t)."""
        ab = self.alpha_bar[t][:, None]
        lat_t = ab.sqrt() * batch.lattice + (1 - ab).sqrt() * eps_l
        if self.coords == "wrapped":
            x_t = torch.remainder(batch.frac + self.sigmas[t][:, None, None] * eps_x, 1.0)
        else:
            x0 = 2 * batch.frac - 1
            x_t = ab[..., None].sqrt() * x0 + (1 - ab[..., None]).sqrt() * eps_x
        return x_t * batch.mask[..., None], lat_t

    def loss_terms(
        self, batch: CrystalBatch, *, generator: torch.Generator | None = None, p_uncond: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """Coordinate and lattice losses, averaged over real atoms and over the batch.

        A conditional network sees each row's space group, replaced by "none" (0) with probability
        ``p_uncond`` so that one model gives both terms of classifier-free guidance.
        """
        b, dev = len(batch), batch.frac.device
        t = torch.randint(1, self.T + 1, (b,), generator=generator, device="cpu").to(dev)
        eps_x = torch.randn(batch.frac.shape, generator=generator).to(dev)
        eps_l = torch.randn(batch.lattice.shape, generator=generator).to(dev)
        x_t, lat_t = self.q_sample(batch, t, eps_x, eps_l)
        sg = batch.space_group if getattr(self.network, "space_groups", 0) else None
        if sg is not None and p_uncond > 0:
            drop = (torch.rand(b, generator=generator) < p_uncond).to(dev)
            sg = torch.where(drop, torch.zeros_like(sg), sg)
        pred_x, pred_l = self.network(x_t, lat_t, batch.atomic_numbers, batch.mask, t.float() / self.T, sg)
        if self.coords == "wrapped":  # DiffCSP: regress score / sqrt(E[score^2])
            sig = self.sigmas[t][:, None, None].expand_as(eps_x)
            target = wrapped_normal_score(sig * eps_x, sig) / self.score_norm[t].sqrt()[:, None, None]
        else:
            target = eps_x
        m = batch.mask[..., None].float()
        coord = (((pred_x - target) ** 2) * m).sum() / (3 * m.sum()).clamp(min=1)
        lattice = ((pred_l - eps_l) ** 2).mean()
        return {"coord": coord, "lattice": lattice, "loss": coord + self.lattice_weight * lattice}

    def loss(self, batch: CrystalBatch, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Total training loss of a batch (conditioned on its space groups when the model is conditional)."""
        return self.loss_terms(batch, generator=generator)["loss"]

    # -- sampling -----------------------------------------------------------------------------
    def _predict(self, x, lat, numbers, mask, t: int, space_group=None, guidance: float = 0.0):
        """Network output; with a space group and ``guidance`` w > 0, classifier-free guidance
        (1 + w) * conditional - w * unconditional, both halves in one batched call."""
        tt = torch.full((x.shape[0],), t / self.T, device=x.device)
        if space_group is None or not getattr(self.network, "space_groups", 0):
            return self.network(x, lat, numbers, mask, tt)
        if guidance == 0:
            return self.network(x, lat, numbers, mask, tt, space_group)
        both = self.network(torch.cat([x, x]), torch.cat([lat, lat]), torch.cat([numbers, numbers]),
                            torch.cat([mask, mask]), torch.cat([tt, tt]),
                            torch.cat([space_group, torch.zeros_like(space_group)]))
        b = x.shape[0]
        return tuple((1 + guidance) * out[:b] - guidance * out[b:] for out in both)

    @torch.no_grad()
    def sample(
        self,
        atomic_numbers: torch.Tensor,
        mask: torch.Tensor,
        *,
        steps: int | None = None,
        sampler: Literal["ddim", "full"] = "ddim",
        seed: int | None = None,
        generator: torch.Generator | None = None,
        space_group: torch.Tensor | None = None,
        guidance: float = 0.0,
        project=None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate coordinates (B, A, 3) in [0, 1) and normalised lattices (B, 6).

        Args:
            atomic_numbers, mask: (B, A) conditioning species and real-atom mask.
            steps: number of denoising steps, an evenly spaced subsequence of the T training steps
                (default 50 for ``"ddim"``, all T for ``"full"``; Table 8 samples with 256).
            sampler: ``"ddim"`` deterministic few-step sampler, or ``"full"`` ancestral
                (predictor-corrector on the torus) sampler.
            seed, generator: source of randomness; the same seed gives the same result.
            space_group: (B,) space-group numbers for a conditional model (0: none).
            guidance: classifier-free guidance weight w (0: the conditional prediction alone).
            project: ``f(x0, lattice0) -> (x0, lattice0)`` applied to the predicted clean state at
                every step (DDIM only), e.g. :class:`~genms_pmg.structures.diffusion.symmetry.WyckoffSkeleton`
                to keep samples on a template's Wyckoff skeleton: the network denoises freely and the
                estimate it steers towards always has the template's symmetry.
        """
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        dev, (b, a) = mask.device, mask.shape
        randn = lambda *shape: torch.randn(*shape, generator=generator).to(dev)
        lat = randn(b, 6)
        if self.coords == "wrapped":
            x = torch.rand(b, a, 3, generator=generator).to(dev)
        else:
            x = randn(b, a, 3)
        if sampler not in ("ddim", "full"):
            raise ValueError(f"sampler must be 'ddim' or 'full', not {sampler!r}")
        if project is not None and (sampler != "ddim" or self.coords != "wrapped"):
            raise ValueError("a projection (Wyckoff skeleton) needs the 'ddim' sampler and wrapped coordinates")
        if project is not None:
            return self._sample_projected(x, lat, atomic_numbers, mask, steps or 50, space_group, guidance, project)
        n = min(steps or (50 if sampler == "ddim" else self.T), self.T)
        ts = sorted({round(v) for v in torch.linspace(self.T, 1, n).tolist()}, reverse=True)
        for i, t in enumerate(ts):
            s = ts[i + 1] if i + 1 < len(ts) else 0
            if sampler == "full" and self.coords == "wrapped":
                x = self._corrector(x, lat, atomic_numbers, mask, t, randn, space_group, guidance)
            eps_x, eps_l = self._predict(x * mask[..., None], lat, atomic_numbers, mask, t, space_group, guidance)
            stochastic = sampler == "full"
            lat = self._ddpm_step(lat, eps_l, t, s, randn if stochastic else None)
            if self.coords == "wrapped":
                x = self._torus_step(x, eps_x, t, s, randn if stochastic else None)
            else:
                x = self._ddpm_step(x, eps_x, t, s, randn if stochastic else None)
        if self.coords == "naive":
            x = torch.remainder((x + 1) / 2, 1.0)
        x = torch.where(x >= 1.0, torch.zeros_like(x), x)
        return x * mask[..., None], lat

    def _sample_projected(self, x, lat, numbers, mask, steps: int, space_group, guidance: float, project):
        """DDIM with the clean-state estimate projected at every step (DDIM-style x0 projection)."""
        n = min(steps, self.T)
        ts = sorted({round(v) for v in torch.linspace(self.T, 1, n).tolist()}, reverse=True)
        for i, t in enumerate(ts):
            s = ts[i + 1] if i + 1 < len(ts) else 0
            pred_x, eps_l = self._predict(x * mask[..., None], lat, numbers, mask, t, space_group, guidance)
            ab_t, ab_s = self.alpha_bar[t], self.alpha_bar[s]
            lat0 = ((lat - (1 - ab_t).sqrt() * eps_l) / ab_t.sqrt()).clamp(-5, 5)
            sig_t, sig_s = self.sigmas[t], self.sigmas[s]
            score = pred_x * self.score_norm[t].sqrt()
            x0 = torch.remainder(x + sig_t**2 * score, 1.0)
            x0, lat0 = project(x0, lat0)
            eps_l = (lat - ab_t.sqrt() * lat0) / (1 - ab_t).sqrt()  # the noise consistent with the projection
            lat = ab_s.sqrt() * lat0 + (1 - ab_s).sqrt() * eps_l
            x = torch.remainder(x0 - sig_s * sig_t * score, 1.0)
        x = torch.where(x >= 1.0, torch.zeros_like(x), x)
        return x * mask[..., None], lat

    def _ddpm_step(self, z, eps, t: int, s: int, randn) -> torch.Tensor:
        """Ancestral DDPM step t -> s (randn given) or deterministic DDIM (eta = 0)."""
        ab_t, ab_s = self.alpha_bar[t], self.alpha_bar[s]
        z0 = ((z - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()).clamp(-5, 5)
        if randn is None:
            return ab_s.sqrt() * z0 + (1 - ab_s).sqrt() * eps
        beta = 1 - ab_t / ab_s
        mean = (ab_s.sqrt() * beta * z0 + (1 - beta).sqrt() * (1 - ab_s) * z) / (1 - ab_t)
        if s == 0:
            return mean
        var = beta * (1 - ab_s) / (1 - ab_t)
        return mean + var.sqrt() * randn(*z.shape)

    def _torus_step(self, x, pred, t: int, s: int, randn) -> torch.Tensor:
        """VE step on the torus: reverse-SDE predictor (randn given) or probability-flow DDIM."""
        sig_t, sig_s = self.sigmas[t], self.sigmas[s]
        score = pred * self.score_norm[t].sqrt()
        if randn is None:  # x0_hat = x + sig_t^2 score; x_s = x0_hat - sig_s * sig_t * score
            x = x + (sig_t**2 - sig_s * sig_t) * score
        else:
            step = sig_t**2 - sig_s**2
            std = (sig_s**2 * step / sig_t**2).sqrt()
            x = x + step * score + std * randn(*x.shape)
        return torch.remainder(x, 1.0)

    def _corrector(self, x, lat, numbers, mask, t: int, randn, space_group=None, guidance: float = 0.0) -> torch.Tensor:
        """One Langevin corrector step on coordinates (DiffCSP)."""
        sig = self.sigmas[t]
        pred, _ = self._predict(x * mask[..., None], lat, numbers, mask, t, space_group, guidance)
        step = self.corrector_lr * (sig / self.sigmas[1]) ** 2
        x = x + step * pred * self.score_norm[t].sqrt() + (2 * step).sqrt() * randn(*x.shape)
        return torch.remainder(x, 1.0)
