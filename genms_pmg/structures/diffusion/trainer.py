"""Training loop: Adam, EMA, gradient clipping, JSONL loss log, atomic checkpoints, resume.

Table 8 trains with lr 5e-5, Adam betas (0.9, 0.99), EMA 0.9999 at batch 512 for 200k steps. The
defaults here are scaled for runs ~100x shorter on smaller batches: lr 1e-4 and EMA 0.999 (an
EMA horizon of ~1k steps instead of ~10k), betas unchanged.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import shutil
import time
from pathlib import Path

import torch
from pymatgen.core import Structure
from tqdm.auto import tqdm

from genms_pmg.structures.diffusion.diffusion import CrystalDiffusion
from genms_pmg.structures.diffusion.network import CrystalDenoiser
from genms_pmg.structures.diffusion.representation import (
    CrystalBatch,
    LatticeStats,
    structures_to_batch,
)

__all__ = ["DiffusionTrainer", "export_weights", "load_diffusion", "save_checkpoint"]

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: Path, payload: dict) -> None:
    """torch.save to a temporary file then rename, so a crash never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_diffusion(path: str | Path, *, ema: bool = True) -> tuple[CrystalDiffusion, LatticeStats]:
    """Rebuild the diffusion model (EMA weights by default) and its statistics from a checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    net = CrystalDenoiser(**ckpt["config"]["network"])
    diffusion = CrystalDiffusion(net, **ckpt["config"]["diffusion"])
    use_ema = ckpt.get("ema") is not None and (ema or "model" not in ckpt)  # shipped files hold EMA only
    diffusion.load_state_dict(ckpt["ema" if use_ema else "model"])
    diffusion.eval()
    return diffusion, LatticeStats.from_dict(ckpt["stats"])


class DiffusionTrainer:
    """Trains a :class:`CrystalDiffusion` on structures, resuming from ``out_dir`` if possible.

    Args:
        diffusion: the model to train (its weights are replaced when resuming).
        train: training structures (at most ``max_atoms`` sites each).
        out_dir: where ``checkpoint.pt`` and ``log.jsonl`` go.
        val: validation structures; validation loss uses fixed noise so values are comparable.
        stats: normalisation statistics; fitted on ``train`` when None (or read on resume).
        max_atoms: padding size.
        batch_size, lr, betas, ema_decay, grad_clip: optimisation settings.
        save_every, val_every, log_every: intervals in steps.
        num_threads: torch CPU threads (None leaves torch's default).
        warmup, total_steps, min_lr_ratio: learning-rate schedule: linear warm-up over ``warmup``
            steps, then cosine decay to ``min_lr_ratio * lr`` at ``total_steps`` (constant lr when
            ``total_steps`` is None). Short CPU runs gain most from a decaying rate.
        keep_every: also keep a copy ``checkpoint-<step>.pt`` every this many steps (None: never),
            so a run can be compared with another at the same number of steps.
        seed: seeds batch order and noise.
        device: where to train.
        progress: show a tqdm bar.
        p_uncond: for a space-group-conditional network, the share of rows trained without their
            space group (classifier-free guidance needs both predictions from one model).
        bucket_width: draw each batch from cells whose atom counts fall in one bucket of this width
            and drop unused padding, so a batch of 6-atom cells is not padded to ``max_atoms``
            (0: uniform batches padded to ``max_atoms``, the first shipped model's setting).
        init_from: start a new run from the weights (EMA) of this checkpoint instead of random
            ones; parameters it lacks (a new space-group embedding) keep their initial values.
    """

    def __init__(
        self,
        diffusion: CrystalDiffusion,
        train: list[Structure],
        *,
        out_dir: str | Path,
        val: list[Structure] | None = None,
        stats: LatticeStats | None = None,
        max_atoms: int = 20,
        batch_size: int = 64,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        ema_decay: float = 0.999,
        grad_clip: float = 1.0,
        save_every: int = 1000,
        val_every: int = 1000,
        log_every: int = 50,
        warmup: int = 500,
        total_steps: int | None = None,
        min_lr_ratio: float = 0.1,
        keep_every: int | None = None,
        num_threads: int | None = None,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = True,
        p_uncond: float = 0.1,
        bucket_width: int = 4,
        init_from: str | Path | None = None,
    ) -> None:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(device)
        self.diffusion = diffusion.to(self.device)
        self.ema = copy.deepcopy(diffusion).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(diffusion.parameters(), lr=lr, betas=betas, weight_decay=0.0)
        self.batch_size, self.ema_decay, self.grad_clip = batch_size, ema_decay, grad_clip
        self.save_every, self.val_every, self.log_every = save_every, val_every, log_every
        self.progress, self.step, self.elapsed_s = progress, 0, 0.0
        self.base_lr, self.warmup, self.total_steps, self.min_lr_ratio = lr, warmup, total_steps, min_lr_ratio
        self.keep_every = keep_every
        self.gen = torch.Generator().manual_seed(seed)
        self.hparams = {"batch_size": batch_size, "lr": lr, "betas": list(betas), "ema_decay": ema_decay,
                            "grad_clip": grad_clip, "seed": seed, "max_atoms": max_atoms,
                        "warmup": warmup, "total_steps": total_steps, "min_lr_ratio": min_lr_ratio,
                        "p_uncond": p_uncond, "bucket_width": bucket_width}
        self.p_uncond, self.bucket_width = p_uncond, bucket_width
        ckpt_path = self.out_dir / CHECKPOINT
        resume = torch.load(ckpt_path, map_location="cpu", weights_only=False) if ckpt_path.exists() else None
        if resume is not None:
            stats = LatticeStats.from_dict(resume["stats"])
        if resume is None and init_from is not None:
            warm = torch.load(init_from, map_location="cpu", weights_only=False)
            stats = stats or LatticeStats.from_dict({**warm["stats"], "max_atoms": max_atoms})
            try:
                missing, unexpected = self.diffusion.load_state_dict(warm.get("ema") or warm["model"], strict=False)
            except RuntimeError:  # shapes differ: another width, head or pair size
                missing, unexpected = [], ["(tensor shapes differ)"]
            if unexpected:
                raise ValueError(f"{init_from} was trained with other network settings "
                                 f"({warm['config']['network']}); give the same width, mults and pair size")
            self.ema.load_state_dict(self.diffusion.state_dict())
            self.hparams["init_from"] = {"path": str(init_from), "step": warm.get("step"),
                                         "new_parameters": sorted(missing)}
        self.stats = stats or LatticeStats.fit(train, max_atoms=max_atoms)
        conditional = bool(getattr(self.diffusion.network, "space_groups", 0))
        self.data = structures_to_batch(train, self.stats, space_groups=conditional)
        self.val = structures_to_batch(val, self.stats, space_groups=conditional) if val else None
        sizes = self.data.mask.sum(1)
        keys = (sizes - 1) // bucket_width if bucket_width else torch.zeros_like(sizes)
        self.buckets = [torch.nonzero(keys == k).flatten() for k in torch.unique(keys)]
        self.bucket_weights = torch.tensor([len(b) for b in self.buckets], dtype=torch.float)
        if resume is not None:
            self.diffusion.load_state_dict(resume["model"])
            self.ema.load_state_dict(resume["ema"])
            self.opt.load_state_dict(resume["optimizer"])
            self.step = int(resume["step"])
            self.elapsed_s = float(resume.get("elapsed_s", 0.0))
            if "rng" in resume:
                self.gen.set_state(resume["rng"])
            self.hparams["init_from"] = resume["config"].get("trainer", {}).get("init_from")
            self.resumed_from = {"step": self.step, "elapsed_s": self.elapsed_s,
                                 "saved_at": resume.get("saved_at"), "saved_on": resume.get("saved_on")}
        else:
            self.resumed_from = None

    def config(self) -> dict:
        """Everything needed to rebuild the model, plus the training settings."""
        return {"network": self.diffusion.network.config, "diffusion": self.diffusion.config, "trainer": self.hparams}

    def save(self) -> Path:
        """Write ``checkpoint.pt`` atomically."""
        path = self.out_dir / CHECKPOINT
        save_checkpoint(path, {
            "model": self.diffusion.state_dict(), "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(), "step": self.step, "stats": self.stats.to_dict(),
            "config": self.config(), "rng": self.gen.get_state(),
            "elapsed_s": self.elapsed_s, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "saved_on": platform.node(),
        })
        return path

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = min(self.ema_decay, (1 + self.step) / (10 + self.step))  # warm-up: early EMA tracks the model
        for e, p in zip(self.ema.parameters(), self.diffusion.parameters()):
            e.lerp_(p, 1 - d)

    def learning_rate(self, step: int) -> float:
        """Learning rate at ``step``: linear warm-up, then cosine decay when ``total_steps`` is set."""
        if step < self.warmup:
            return self.base_lr * (step + 1) / self.warmup
        if not self.total_steps or self.total_steps <= self.warmup:
            return self.base_lr
        progress = min(1.0, (step - self.warmup) / (self.total_steps - self.warmup))
        floor = self.min_lr_ratio
        return self.base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

    def train_step(self, batch: CrystalBatch) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the loss terms."""
        self.diffusion.train()
        lr = self.learning_rate(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        terms = self.diffusion.loss_terms(batch.to(self.device), generator=self.gen, p_uncond=self.p_uncond)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.diffusion.parameters(), self.grad_clip)
        self.opt.step()
        self.step += 1
        self._update_ema()
        return {k: float(v.detach()) for k, v in terms.items()} | {"grad_norm": float(gnorm), "lr": lr}

    def next_batch(self) -> CrystalBatch:
        """A random batch from one atom-count bucket (chosen in proportion to its size), padding cropped."""
        bucket = self.buckets[int(torch.multinomial(self.bucket_weights, 1, generator=self.gen))]
        idx = bucket[torch.randint(0, len(bucket), (self.batch_size,), generator=self.gen)]
        return self.data.index(idx).cropped()

    @torch.no_grad()
    def validate(self, *, max_batches: int = 8) -> float | None:
        """Mean EMA loss on the validation set with a fixed noise seed."""
        if self.val is None:
            return None
        g, total, count = torch.Generator().manual_seed(1234), 0.0, 0
        for start in range(0, min(len(self.val), max_batches * self.batch_size), self.batch_size):
            chunk = self.val.index(torch.arange(start, min(start + self.batch_size, len(self.val))))
            total += float(self.ema.loss(chunk.to(self.device), generator=g)) * len(chunk)
            count += len(chunk)
        return total / count

    def _log(self, record: dict) -> None:
        with open(self.out_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def train(self, steps: int) -> int:
        """Train until ``steps`` total steps (counting resumed ones); returns the final step."""
        bar = tqdm(total=steps, initial=self.step, disable=not self.progress, desc="diffusion")
        t0, start_elapsed = time.perf_counter(), self.elapsed_s
        if self.resumed_from is not None and self.step < steps:
            self._log({"event": "resumed", **self.resumed_from, "resumed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "resumed_on": platform.node(), "target_steps": steps})
        elif self.step == 0 and self.hparams.get("init_from"):
            self._log({"event": "initialised", "init_from": self.hparams["init_from"],
                       "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "target_steps": steps})
        while self.step < steps:
            terms = self.train_step(self.next_batch())
            self.elapsed_s = start_elapsed + time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.4f}")
            record = None
            if self.step % self.log_every == 0 or self.step == steps:
                record = {"step": self.step, **terms, "time_s": round(self.elapsed_s, 3)}
            if self.val is not None and (self.step % self.val_every == 0 or self.step == steps):
                record = (record or {"step": self.step}) | {"val_loss": self.validate()}
            if record:
                self._log(record)
            keep = bool(self.keep_every) and self.step % self.keep_every == 0
            if keep or self.step % self.save_every == 0 or self.step == steps:
                path = self.save()
                if keep:
                    shutil.copyfile(path, self.out_dir / f"checkpoint-{self.step}.pt")
        bar.close()
        return self.step


def export_weights(checkpoint: str | Path, out: str | Path) -> dict:
    """Write only what sampling needs (EMA weights, config, statistics) from a training checkpoint.

    Drops the optimiser state and the raw weights, which a shipped model does not need; returns
    the training facts (step, elapsed seconds, config) for the model card.
    """
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    slim = {"ema": ckpt["ema"], "config": ckpt["config"], "stats": ckpt["stats"], "step": ckpt["step"],
            "elapsed_s": ckpt.get("elapsed_s")}
    save_checkpoint(Path(out), slim)
    return {"step": ckpt["step"], "elapsed_s": ckpt.get("elapsed_s"), "config": ckpt["config"]}
