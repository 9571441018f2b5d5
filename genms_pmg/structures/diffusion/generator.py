"""pi_lo by diffusion: sample crystals for a composition from the trained compact-representation model."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pymatgen.core import Composition

from genms_pmg.errors import DataUnavailableError
from genms_pmg.structures.base import CrystalGenerator, GeneratedStructure

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_WEIGHTS", "DiffusionGenerator"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "model.pt"


class DiffusionGenerator(CrystalGenerator):
    """Samples structures with the diffusion model, the number of formula units drawn from a prior.

    Cells are sampled in batches of similar atom count (each padded only to its largest cell), up to
    ``max_atoms`` sites, which may exceed the training cells' 20: the network has no fixed size.

    Symmetry (``symmetry``):
        - ``"free"``: the model alone chooses positions and lattice (the CSP benchmark's "diffusion").
        - ``"skeleton"``: samples keep the Wyckoff skeleton of template structures of the
          composition (the family's prototypes first, a requested space group first); the model
          chooses free coordinates and lattice parameters (DiffCSP++). Falls back to free sampling
          when no template fits.
        - ``"auto"`` (default): skeleton when a family or space group is asked for, free otherwise.
          (The search relaxes the best structure of each generator, so a skeleton sample that wins
          the unrelaxed screen no longer takes the templates' only relaxation.)
        A space-group-conditional model is told the space group in every mode: the requested one,
        the skeleton's, or the family's most common one; when none of these exists, groups are drawn
        from the training split's groups for the stoichiometry type (:class:`SpaceGroupPrior`).

    Args:
        weights: checkpoint written by :class:`DiffusionTrainer` (EMA weights are used).
        steps: denoising steps (a subsequence of the model's T training steps), for either sampler.
        sampler: ``"full"`` (predictor-corrector, the default: its Langevin corrector sharpens the
            positions; on 30 validation rows it halved the matched RMSE of DDIM, 0.107 vs 0.241, at
            4 times the network calls) or ``"ddim"`` (fast, deterministic given the start).
            Skeleton sampling always uses DDIM, whose clean-state estimate is what gets projected.
        device: torch device for sampling.
        symmetry: see above.
        guidance: classifier-free guidance weight for a conditional model (0: conditional only).
        max_atoms: largest cell sampled (default 96: a garnet's 80-atom primitive cell fits).
        batch_size: samples per network batch; cells are sorted by size first, so small batches waste
            little padding (64 mixed validation cells: 7.5 structures/s in batches of 16, 4.5 in one of 64).
        templates: the template generator that supplies skeletons (default: all OQMD-ICSD and AFLOW
            templates; a leave-formula-out one in benchmarks).
        max_skeletons: at most this many distinct templates share the ``n`` samples (default 1: the
            best-ranked template of the family. With 3, a request for a cubic perovskite fluoride got
            samples on orthorhombic and rhombohedral perovskite skeletons too; those won the energy
            screen unrelaxed, took the formula's one relaxation and relaxed above the hull bound).
        space_group_prior: for a conditional model asked for no group, spread the samples over the
            groups the training split holds for the stoichiometry type and cell size (``True``, the
            default: the shipped prior), a :class:`SpaceGroupPrior` or its file, or ``None`` to
            sample every structure without a group.
        unconditional_share: share of those samples drawn without a group (groups the prior never
            saw for this stoichiometry stay reachable).
    """

    name: ClassVar[str] = "diffusion"

    def __init__(
        self,
        *,
        weights: str | Path | None = None,
        steps: int = 100,
        sampler: Literal["ddim", "full"] = "full",
        device: str = "cpu",
        symmetry: Literal["auto", "free", "skeleton"] = "auto",
        guidance: float = 0.0,
        max_atoms: int = 96,
        batch_size: int = 16,
        templates=None,
        max_skeletons: int = 1,
        space_group_prior=True,
        unconditional_share: float = 0.25,
    ) -> None:
        from genms_pmg.structures.diffusion.trainer import load_diffusion

        if symmetry not in ("auto", "free", "skeleton"):
            raise ValueError(f"symmetry must be 'auto', 'free' or 'skeleton', not {symmetry!r}")
        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        if not path.exists():
            raise DataUnavailableError(
                f"diffusion model not trained yet ({path} missing): train one with "
                "genms train-diffusion and pass weights=<checkpoint.pt>"
            )
        self.weights = path
        self.model, self.stats = load_diffusion(path)
        self.model.to(device)
        self.steps, self.sampler, self.device = steps, sampler, torch.device(device)
        self.symmetry, self.guidance, self.max_atoms, self.batch_size = symmetry, guidance, max_atoms, batch_size
        self.max_skeletons = max_skeletons
        self._templates = templates
        self.unconditional_share = unconditional_share
        self.space_group_prior = None
        if space_group_prior is not None and space_group_prior is not False and self.conditional:
            from genms_pmg.structures.diffusion.space_group_prior import DEFAULT_PRIOR, SpaceGroupPrior

            if isinstance(space_group_prior, SpaceGroupPrior):
                self.space_group_prior = space_group_prior
            else:
                self.space_group_prior = SpaceGroupPrior.load(
                    DEFAULT_PRIOR if space_group_prior is True else space_group_prior)

    @property
    def conditional(self) -> bool:
        """True when the model was trained with space-group conditioning."""
        return bool(getattr(self.model.network, "space_groups", 0))

    @property
    def templates(self):
        """The template generator that supplies skeletons (built on first use)."""
        if self._templates is None:
            from genms_pmg.structures.templates import TemplateGenerator

            self._templates = TemplateGenerator(max_atoms=self.max_atoms)
        return self._templates

    def _choose_z(self, atoms_per_fu: int, limit: int, n: int, rng: np.random.Generator) -> list[int]:
        """Draw Z for each structure from the training histogram of atom counts (add-one smoothed;
        sizes beyond the training cells get the smoothing weight only, so small cells stay likelier)."""
        zs = np.arange(1, limit // atoms_per_fu + 1)
        hist = np.asarray(self.stats.natoms_hist, dtype=float)
        counts = np.array([hist[z * atoms_per_fu] if z * atoms_per_fu < len(hist) else 0.0 for z in zs])
        weights = counts + 1.0
        return rng.choice(zs, size=n, p=weights / weights.sum()).tolist()

    def _family_space_group(self, family: str | None) -> int | None:
        if not family:
            return None
        from genms_pmg.knowledge.families import get_family

        try:
            groups = get_family(family).space_groups
        except Exception:  # noqa: BLE001 - an unknown family name conditions nothing
            return None
        return int(groups[0]) if groups else None

    def _groups(self, cells: list[list[int]], space_group: int | None, composition: Composition) -> list[int | None]:
        """One condition per cell (all cells hold ``composition``, in any multiple): the given group,
        else groups from the prior for each cell size, else none."""
        if space_group or self.space_group_prior is None:
            return [space_group] * len(cells)
        by_size: dict[int, list[int]] = {}
        for i, cell in enumerate(cells):
            by_size.setdefault(len(cell), []).append(i)
        groups: list[int | None] = [None] * len(cells)
        for natoms, members in by_size.items():
            drawn = self.space_group_prior.allocate(composition, natoms, len(members),
                                                    unconditional_share=self.unconditional_share)
            for i, group in zip(members, drawn):
                groups[i] = group or None
        return groups

    def generate(
        self,
        composition: Composition,
        *,
        n: int,
        seed: int = 0,
        family: str | None = None,
        max_atoms: int | None = None,
        space_group: int | None = None,
    ) -> list[GeneratedStructure]:
        """Sample ``n`` structures of ``composition`` (see the class docstring for ``family`` and ``space_group``)."""
        reduced, _ = Composition(composition).get_reduced_composition_and_factor()
        amounts = {el: reduced[el] for el in reduced.elements}
        if n <= 0 or any(abs(a - round(a)) > 1e-6 for a in amounts.values()):
            return []
        limit = min(max_atoms or self.max_atoms, self.max_atoms)
        skeleton = self.symmetry == "skeleton" or (self.symmetry == "auto" and (family or space_group))
        if skeleton:
            made = self._generate_on_skeletons(reduced, n=n, seed=seed, family=family, limit=limit,
                                               space_group=space_group)
            if made:
                return made
        per_fu = round(sum(amounts.values()))
        if per_fu > limit:
            return []
        rng = np.random.default_rng(seed)
        # free sampling stays within the training cells' size unless one formula unit is larger: the
        # model never saw bigger free cells, and each costs quadratically more (a 95-atom SrTiO3 cell)
        z_list = self._choose_z(per_fu, min(limit, max(self.stats.max_atoms, per_fu)), n, rng)
        unit = [el.Z for el, a in amounts.items() for _ in range(round(a))]
        cells = [sorted(unit * z) for z in z_list]
        groups = self._groups(cells, space_group or self._family_space_group(family), reduced)
        return self._sample(cells, seed=seed, z_list=z_list, space_group=groups)

    def generate_cell(self, cell: Composition, *, n: int, seed: int = 0,
                      space_group: int | None = None) -> list[GeneratedStructure]:
        """``n`` structures holding exactly the atoms of ``cell`` (the CSP benchmark's setting).

        With ``symmetry="skeleton"``, skeletons come from templates of at most this many atoms (a
        smaller primitive cell of the same crystal is the same answer to a structure matcher).
        """
        cell = Composition(cell)
        numbers = sorted(el.Z for el, a in cell.items() for _ in range(round(a)))
        if n <= 0 or not numbers or len(numbers) > self.max_atoms:
            return []
        if self.symmetry == "skeleton":
            made = self._generate_on_skeletons(cell.reduced_composition, n=n, seed=seed, family=None,
                                               limit=len(numbers), space_group=space_group)
            if made:
                return made
        z = int(round(cell.get_reduced_composition_and_factor()[1]))
        cells = [numbers] * n
        return self._sample(cells, seed=seed, z_list=[z] * n, space_group=self._groups(cells, space_group, cell))

    def skeletons(self, composition: Composition, *, n: int, seed: int = 0, family: str | None = None,
                  limit: int | None = None, space_group: int | None = None) -> list:
        """Up to ``max_skeletons`` Wyckoff skeletons from the composition's best-ranked templates."""
        from genms_pmg.structures.diffusion.symmetry import WyckoffSkeleton

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made = self.templates.generate(composition, n=max(self.max_skeletons, 1), seed=seed,
                                           family=family, max_atoms=limit, space_group=space_group)
        if family and any(g.info.get("family_match") for g in made):  # the family's own prototypes only
            made = [g for g in made if g.info.get("family_match")]
        out = []
        for g in made:
            try:
                out.append((WyckoffSkeleton(g.structure, self.stats), g.info))
            except ValueError as err:
                log.debug("skipping template %s: %s", g.info.get("template_id"), err)
            if len(out) >= self.max_skeletons:
                break
        return out

    def _generate_on_skeletons(self, composition, *, n: int, seed: int, family, limit,
                               space_group) -> list[GeneratedStructure]:
        skeletons = self.skeletons(composition, n=n, seed=seed, family=family, limit=limit,
                                   space_group=space_group)
        if not skeletons:
            return []
        out: list[GeneratedStructure] = []
        for k, (skeleton, info) in enumerate(skeletons):
            count = n // len(skeletons) + (1 if k < n % len(skeletons) else 0)
            if count == 0:
                continue
            extra = {"symmetry": "skeleton", "skeleton_space_group": skeleton.space_group,
                     "template_id": info.get("template_id"), "proto_label": info.get("proto_label"),
                     "template_formula": info.get("template_formula")}
            z = round(len(skeleton) / sum(composition.values()))
            made = self._sample([skeleton.atomic_numbers] * count, seed=seed + 7919 * k, z_list=[z] * count,
                                space_group=skeleton.space_group, project=skeleton, extra=extra)
            for g in made:  # the template's volume estimate (DLS + atomic volumes) beats the per-element fit
                g.structure.scale_lattice(skeleton.template.volume)
            out.extend(made)
        return out

    def _sample(self, cells: list[list[int]], *, seed: int, z_list: list[int],
                space_group: int | None | list[int | None] = None,
                project=None, extra: dict | None = None) -> list[GeneratedStructure]:
        """Sample one structure per list of atomic numbers, batched by atom count (no padding waste);
        ``space_group`` is one condition for all cells or one per cell."""
        from genms_pmg.structures.diffusion.representation import tensors_to_structures

        groups = list(space_group) if isinstance(space_group, list) else [space_group] * len(cells)

        order = sorted(range(len(cells)), key=lambda i: (len(cells[i]), i))
        results: dict[int, object] = {}
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start: start + self.batch_size]
            width = max(len(cells[i]) for i in chunk)
            numbers = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.bool)
            for row, i in enumerate(chunk):
                numbers[row, : len(cells[i])] = torch.as_tensor(cells[i])
                mask[row, : len(cells[i])] = True
            sg = None
            if self.conditional:
                sg = torch.tensor([int(groups[i] or 0) for i in chunk], dtype=torch.long, device=self.device)
            x, lat = self.model.sample(
                numbers.to(self.device), mask.to(self.device), steps=self.steps,
                sampler="ddim" if project is not None else self.sampler,
                generator=generator, space_group=sg, guidance=self.guidance, project=project,
            )
            for row, structure in zip(chunk, tensors_to_structures(x, numbers, mask, lat, self.stats)):
                results[row] = structure
        steps = min(self.steps, self.model.T)
        base = {"generator": self.name, "steps": steps, "sampler": "ddim" if project is not None else self.sampler,
                "symmetry": "free"}
        out = []
        for i, z in zip(range(len(cells)), z_list):
            info = {**base, **(extra or {}), "Z": int(z)}
            if self.conditional and groups[i]:
                info["space_group_condition"] = int(groups[i])
            out.append(GeneratedStructure(results[i], self.name, info))
        return out
