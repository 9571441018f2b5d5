"""The compact-representation diffusion model: a tiny model trained into tmp_path, then used."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Composition, Lattice, Structure

from genms_pmg.errors import DataUnavailableError
from genms_pmg.structures.diffusion import (
    CrystalDenoiser,
    CrystalDiffusion,
    DiffusionGenerator,
    DiffusionTrainer,
    load_structures_csv,
    structures_to_batch,
    tensors_to_structures,
)

VAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "oqmd_icsd" / "val.csv.gz"
TINY = {"width": 32, "mults": (1, 2), "blocks_per_level": 1, "head_dim": 16, "dropout": 0.0, "pair_dim": 16}


def tiny(coords: str = "wrapped") -> CrystalDiffusion:
    torch.manual_seed(0)
    net = CrystalDenoiser(**TINY, fourier=4 if coords == "wrapped" else 0)
    return CrystalDiffusion(net, timesteps=50, coords=coords)


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    if not VAL_CSV.exists():
        pytest.skip(f"development data not found at {VAL_CSV}")
    return load_structures_csv(VAL_CSV, limit=36)


@pytest.fixture(scope="module")
def trained(structures, tmp_path_factory) -> DiffusionTrainer:
    out = tmp_path_factory.mktemp("diffusion")
    trainer = DiffusionTrainer(
        tiny(), structures[:30], val=structures[30:], out_dir=out, batch_size=8, lr=1e-3,
        save_every=10, val_every=10, log_every=5, progress=False, num_threads=2,
    )
    trainer.train(30)
    return trainer


def test_loader_keeps_small_structures(structures):
    assert len(structures) == 36 and all(len(s) <= 20 for s in structures)


def test_loader_reads_mp20_layout(tmp_path):
    rocksalt = [Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]) for a in (4.0, 4.2, 4.4)]
    cifs = [s.to(fmt="cif") for s in rocksalt]
    path = tmp_path / "train.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["material_id", "cif", "formation_energy_per_atom"])
        writer.writerows([[f"mp-{i}", cif, -1.0] for i, cif in enumerate(cifs)])
        writer.writerow(["mp-bad", "not a cif", 0.0])
    with pytest.warns(UserWarning, match="skipped 1"):
        got = load_structures_csv(path)
    assert [s.composition.reduced_formula for s in got] == ["NaCl"] * 3
    assert got[2].lattice.a == pytest.approx(4.4)


def test_lattice_roundtrip_keeps_shape(trained, structures):
    batch = structures_to_batch(structures[:5], trained.stats)
    back = tensors_to_structures(batch.frac, batch.atomic_numbers, batch.mask, batch.lattice, trained.stats)
    for s, b in zip(structures[:5], back):
        assert np.allclose(s.lattice.angles, b.lattice.angles, atol=1e-3)
        assert np.allclose(np.array(s.lattice.abc) / s.lattice.a, np.array(b.lattice.abc) / b.lattice.a, atol=1e-4)
        assert b.composition == s.composition
        assert b.volume == pytest.approx(trained.stats.volume([site.specie.Z for site in s]))


@pytest.mark.parametrize("coords", ["wrapped", "naive"])
def test_loss_finite_and_overfits_fixed_batch(structures, trained, coords):
    model = tiny(coords)
    batch = structures_to_batch(structures[:8], trained.stats)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = model.loss(batch, generator=torch.Generator().manual_seed(0))  # same t and noise each step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]


def test_training_logs_and_resumes(trained, structures, tmp_path):
    records = [json.loads(line) for line in (trained.out_dir / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 30 and np.isfinite(records[-1]["val_loss"])
    shutil.copytree(trained.out_dir, tmp_path / "run")
    run = tmp_path / "run"
    again = DiffusionTrainer(tiny(), structures[:30], out_dir=run, batch_size=8, progress=False, save_every=5)
    assert again.step == 30
    assert torch.equal(again.ema.network.coord_out.weight, trained.ema.network.coord_out.weight)
    assert again.train(35) == 35
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 35


@pytest.mark.parametrize("sampler", ["ddim", "full"])
def test_sampling_shapes_range_and_determinism(trained, structures, sampler):
    batch = structures_to_batch(structures[:6], trained.stats)
    x, lat = trained.ema.sample(batch.atomic_numbers, batch.mask, steps=8, sampler=sampler, seed=3)
    assert x.shape == (6, 20, 3) and lat.shape == (6, 6)
    assert torch.isfinite(lat).all() and (x >= 0).all() and (x < 1).all()
    assert (x[~batch.mask] == 0).all()
    x2, lat2 = trained.ema.sample(batch.atomic_numbers, batch.mask, steps=8, sampler=sampler, seed=3)
    assert torch.equal(x, x2) and torch.equal(lat, lat2)
    x3, _ = trained.ema.sample(batch.atomic_numbers, batch.mask, steps=8, sampler=sampler, seed=4)
    assert not torch.equal(x, x3)
    out = tensors_to_structures(x, batch.atomic_numbers, batch.mask, lat, trained.stats)
    assert [len(s) for s in out] == [len(s) for s in structures[:6]]


def test_naive_sampler_wraps_into_unit_cell(trained, structures):
    batch = structures_to_batch(structures[:3], trained.stats)
    x, _ = tiny("naive").sample(batch.atomic_numbers, batch.mask, steps=5, seed=0)
    assert (x >= 0).all() and (x < 1).all()


@pytest.mark.parametrize("pair_dim", [0, 16])
def test_network_is_permutation_equivariant(trained, structures, pair_dim):
    net = CrystalDenoiser(**(TINY | {"pair_dim": pair_dim})).eval()
    torch.nn.init.normal_(net.coord_out.weight)
    torch.nn.init.normal_(net.lattice_out.weight)
    batch = structures_to_batch(structures[:4], trained.stats)
    lat, t = torch.randn(4, 6), torch.rand(4)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ex, el = net(batch.frac, lat, batch.atomic_numbers, batch.mask, t)
        px, pl = net(batch.frac[:, perm], lat, batch.atomic_numbers[:, perm], batch.mask[:, perm], t)
    assert ex.abs().max() > 1e-3
    assert torch.allclose(px, ex[:, perm], atol=1e-5) and torch.allclose(pl, el, atol=1e-5)


def test_generator_from_tiny_checkpoint(trained):
    gen = DiffusionGenerator(weights=trained.out_dir / "checkpoint.pt", steps=6)
    out = gen.generate(Composition("ZnGa2O4"), n=4, seed=1, max_atoms=14)
    assert len(out) == 4
    for g in out:
        assert g.structure.composition.reduced_formula == Composition("ZnGa2O4").reduced_formula
        assert len(g.structure) == 7 * g.info["Z"] <= 14
        assert g.info["generator"] == "diffusion" and g.info["steps"] == 6
    again = gen.generate(Composition("ZnGa2O4"), n=4, seed=1, max_atoms=14)
    assert all(np.allclose(a.structure.frac_coords, b.structure.frac_coords) for a, b in zip(out, again))
    assert gen.generate(Composition("ZnGa2O4"), n=2, max_atoms=6) == []


def test_generator_without_weights_says_how_to_train(tmp_path):
    with pytest.raises(DataUnavailableError, match="not trained yet"):
        DiffusionGenerator(weights=tmp_path / "missing.pt")


@pytest.mark.parametrize(("sampler", "steps"), [("ddim", 10), ("full", None)])
def test_samplers_recover_data_with_an_oracle_network(sampler, steps):
    """With the exact score/noise of a one-point data set, both samplers must land on that point."""
    from genms_pmg.structures.diffusion.diffusion import wrapped_normal_score

    model = tiny()
    x0, l0 = torch.tensor([0.3, 0.95, 0.02]), torch.tensor([0.5, -1.0, 0.2, 0.0, 1.0, -0.3])

    def oracle(x, lat, numbers, mask, t):
        ti = (t * model.T).round().long()
        sig = model.sigmas[ti][:, None, None].expand_as(x)
        score = wrapped_normal_score(torch.remainder(x - x0 + 0.5, 1.0) - 0.5, sig)
        ab = model.alpha_bar[ti][:, None]
        return score / model.score_norm[ti].sqrt()[:, None, None], (lat - ab.sqrt() * l0) / (1 - ab).sqrt()

    model.network.forward = oracle
    numbers, mask = torch.ones(4, 2, dtype=torch.long), torch.ones(4, 2, dtype=torch.bool)
    x, lat = model.sample(numbers, mask, steps=steps, sampler=sampler, seed=0)
    assert (torch.remainder(x - x0 + 0.5, 1.0) - 0.5).abs().max() < 1e-3
    assert torch.allclose(lat, l0.expand_as(lat), atol=1e-3)


def test_loader_niggli_reduces_cells_without_changing_the_crystal():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    if not VAL_CSV.exists():
        pytest.skip(f"development data not found at {VAL_CSV}")
    raw = load_structures_csv(VAL_CSV, limit=12)
    reduced = load_structures_csv(VAL_CSV, limit=12, niggli=True)
    matcher = StructureMatcher()
    for a, b in zip(raw, reduced):
        assert b.lattice.get_niggli_reduced_lattice().abc == pytest.approx(b.lattice.abc, abs=1e-6)
        assert len(a) == len(b) and matcher.fit(a, b)
    assert any(not np.allclose(a.lattice.angles, b.lattice.angles) for a, b in zip(raw, reduced))
