"""Issue 12's new diffusion paths, each with a tiny model trained into tmp_path: space-group
conditioning (classifier-free guidance), warm start and resume logs, atom-count buckets, cells
larger than the training cells, Wyckoff-skeleton sampling and the unseen-prototype CSP split."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from genms_pmg.cli import main
from genms_pmg.structures.diffusion import (
    CrystalDenoiser,
    CrystalDiffusion,
    DiffusionGenerator,
    DiffusionTrainer,
    load_structures_csv,
    structures_to_batch,
)
from genms_pmg.structures.diffusion.symmetry import WyckoffSkeleton

VAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "oqmd_icsd" / "val.csv.gz"
TINY = {"width": 32, "mults": (1, 2), "blocks_per_level": 1, "head_dim": 16, "dropout": 0.0, "pair_dim": 16}


def tiny(space_groups: int = 0) -> CrystalDiffusion:
    torch.manual_seed(0)
    return CrystalDiffusion(CrystalDenoiser(**TINY, space_groups=space_groups), timesteps=50)


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    if not VAL_CSV.exists():
        pytest.skip(f"development data not found at {VAL_CSV}")
    return load_structures_csv(VAL_CSV, limit=40)


@pytest.fixture(scope="module")
def conditional(structures, tmp_path_factory) -> DiffusionTrainer:
    """A space-group-conditional tiny model, warm-started from an unconditional one."""
    base_dir = tmp_path_factory.mktemp("base")
    base = DiffusionTrainer(tiny(), structures[:32], out_dir=base_dir, batch_size=8, lr=1e-3, progress=False,
                            save_every=10, num_threads=2)
    base.train(10)
    out = tmp_path_factory.mktemp("conditional")
    trainer = DiffusionTrainer(tiny(231), structures[:32], val=structures[32:], out_dir=out, batch_size=8, lr=1e-3,
                               save_every=10, val_every=10, log_every=5, progress=False, num_threads=2,
                               init_from=base_dir / "checkpoint.pt", p_uncond=0.2)
    trainer.base_dir = base_dir
    trainer.train(20)
    return trainer


def test_batches_carry_space_groups_from_spglib(structures):
    from genms_pmg.structures.diffusion.representation import LatticeStats

    stats = LatticeStats.fit(structures)
    batch = structures_to_batch(structures[:6], stats, space_groups=True)
    expected = [SpacegroupAnalyzer(s, symprec=0.1).get_space_group_number() for s in structures[:6]]
    assert batch.space_group.tolist() == expected
    assert structures_to_batch(structures[:2], stats).space_group.tolist() == [0, 0]


def test_warm_start_keeps_the_unconditional_predictions_and_logs_it(conditional, structures):
    from genms_pmg.structures.diffusion.trainer import load_diffusion

    base, _ = load_diffusion(conditional.base_dir / "checkpoint.pt")
    fresh = tiny(231)
    fresh.load_state_dict(base.state_dict(), strict=False)  # what init_from does, before any step
    batch = structures_to_batch(structures[:4], conditional.stats, space_groups=True)
    t = torch.full((4,), 0.5)
    with torch.no_grad():
        plain = base.network(batch.frac, batch.lattice, batch.atomic_numbers, batch.mask, t)
        told = fresh.network(batch.frac, batch.lattice, batch.atomic_numbers, batch.mask, t, batch.space_group)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, told))  # zero-initialised embedding
    log = [json.loads(line) for line in (conditional.out_dir / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "initialised"
    assert log[0]["init_from"]["new_parameters"] == ["network.space_group_embedding.weight"]
    trained = conditional.ema.network.space_group_embedding.weight
    assert trained.abs().sum() > 0  # the embedding learnt something in 20 steps


def test_conditioning_and_guidance_change_samples_deterministically(conditional, structures):
    model = conditional.ema
    torch.nn.init.normal_(model.network.space_group_embedding.weight, std=0.5)  # make the effect large
    batch = structures_to_batch(structures[:4], conditional.stats)
    args = (batch.atomic_numbers, batch.mask)
    cubic, other = torch.full((4,), 221), torch.full((4,), 62)
    a = model.sample(*args, steps=6, seed=1, space_group=cubic)
    b = model.sample(*args, steps=6, seed=1, space_group=cubic)
    c = model.sample(*args, steps=6, seed=1, space_group=other)
    d = model.sample(*args, steps=6, seed=1, space_group=cubic, guidance=2.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[1], c[1]) and not torch.allclose(a[1], d[1])
    assert torch.isfinite(d[1]).all() and (d[0] >= 0).all() and (d[0] < 1).all()


def test_resume_logs_a_resumed_event(conditional, structures, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(conditional.out_dir, run)
    again = DiffusionTrainer(tiny(231), structures[:32], out_dir=run, batch_size=8, progress=False, save_every=5)
    assert again.step == 20 and again.train(25) == 25
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if "event" in line]
    resumed = [e for e in events if e["event"] == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] == 20 and resumed[0]["saved_at"]


def test_buckets_crop_padding_and_hold_similar_sizes(conditional):
    for _ in range(5):
        batch = conditional.next_batch()
        sizes = batch.mask.sum(1)
        assert batch.frac.shape[1] == int(sizes.max())  # no all-padding columns
        assert int((sizes - 1).div(4, rounding_mode="floor").unique().numel()) == 1  # one bucket


@pytest.fixture(scope="module")
def generator(conditional) -> DiffusionGenerator:
    return DiffusionGenerator(weights=conditional.out_dir / "checkpoint.pt", steps=5, batch_size=3)


def test_mixed_sizes_come_back_in_order_with_their_atoms(generator):
    cells = [[8, 12], [8] * 6 + [12] * 6, [26, 8], [3] * 5]
    out = generator._sample(cells, seed=0, z_list=[1, 6, 1, 5], space_group=225)
    assert [sorted(s.structure.atomic_numbers) for s in out] == [sorted(c) for c in cells]
    assert all(g.info["space_group_condition"] == 225 for g in out)


def test_cells_beyond_the_training_size_are_sampled(generator):
    assert generator.stats.max_atoms == 20
    out = generator.generate_cell(Composition("Mg8Al16O32"), n=2, seed=0)
    assert [len(g.structure) for g in out] == [56, 56]
    assert all(np.isfinite(g.structure.lattice.volume) for g in out)


def test_wyckoff_projection_is_exact_and_idempotent(generator):
    perovskite = Structure(Lattice.cubic(4.0), ["Sr", "Ti", "O", "O", "O"],
                           [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    spinel = Structure.from_spacegroup("Fd-3m", Lattice.cubic(8.08), ["Mg", "Al", "O"],
                                       [[0.125] * 3, [0.5] * 3, [0.26] * 3]).get_primitive_structure()
    for template, number in ((perovskite, 221), (spinel, 227)):
        skeleton = WyckoffSkeleton(template, generator.stats)
        assert skeleton.space_group == number
        x, lat = torch.rand(3, len(skeleton), 3, generator=torch.Generator().manual_seed(0)), torch.randn(3, 6)
        px, plat = skeleton(x, lat)
        qx, qlat = skeleton(px, plat)
        assert torch.allclose(px, qx, atol=1e-5) and torch.allclose(plat, qlat, atol=1e-4)
        from genms_pmg.structures.diffusion.representation import tensors_to_structures

        numbers = torch.tensor([skeleton.atomic_numbers] * 3)
        for s in tensors_to_structures(px, numbers, torch.ones_like(numbers, dtype=torch.bool), plat, generator.stats):
            assert SpacegroupAnalyzer(s, symprec=1e-3).get_space_group_number() == number


def test_skeleton_sampling_gives_the_family_symmetry(generator):
    skeleton_gen = DiffusionGenerator(weights=generator.weights, steps=5, symmetry="auto", max_skeletons=1)
    out = skeleton_gen.generate(Composition("MgAl2O4"), n=3, seed=0, family="spinel")
    assert len(out) == 3 and all(g.info["symmetry"] == "skeleton" for g in out)
    groups = {SpacegroupAnalyzer(g.structure, symprec=1e-3).get_space_group_number() for g in out}
    assert groups == {227}
    free = skeleton_gen.generate(Composition("MgAl2O4"), n=3, seed=0)  # no family: the model alone
    assert all(g.info["symmetry"] == "free" for g in free)


def test_garnet_cells_of_80_atoms_are_reachable(generator):
    gen = DiffusionGenerator(weights=generator.weights, steps=3, max_skeletons=1, symmetry="auto")
    out = gen.generate(Composition("Ca3Al2Si3O12"), n=1, seed=0, family="garnet")
    assert len(out) == 1 and len(out[0].structure) == 80
    assert SpacegroupAnalyzer(out[0].structure, symprec=1e-3).get_space_group_number() == 230


def _tiny_csv(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_unseen_prototype_rows_are_those_absent_from_training(tmp_path):
    from genms_pmg.evaluation.csp import load_benchmark_rows, training_prototypes, unseen_prototype_rows

    nacl = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]).to(fmt="cif")
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3]).to(fmt="cif")
    train = _tiny_csv(tmp_path / "train.csv.gz", [{"cif": nacl, "proto_name": "AB_1_a_b_225"}])
    val = _tiny_csv(tmp_path / "val.csv.gz", [{"cif": nacl, "proto_name": "AB_1_a_b_225"},
                                              {"cif": cscl, "proto_name": "AB_1_a_b_221"}])
    rows = load_benchmark_rows(val)
    assert [r.prototype for r in rows] == ["AB_1_a_b_225", "AB_1_a_b_221"]
    unseen = unseen_prototype_rows(rows, training_prototypes(train))
    assert [r.formula for r in unseen] == ["CsCl"]
    no_labels = _tiny_csv(tmp_path / "plain.csv.gz", [{"cif": nacl}])
    with pytest.raises(ValueError, match="proto_name"):
        training_prototypes(no_labels)


def test_csp_cli_reports_the_unseen_prototype_subset(generator, tmp_path, capsys):
    if not VAL_CSV.exists():
        pytest.skip(f"development data not found at {VAL_CSV}")
    rows = []
    with gzip.open(VAL_CSV, "rt", newline="") as fh:
        csv.field_size_limit(1 << 30)
        for i, row in enumerate(csv.DictReader(fh)):
            rows.append(row)
            if i >= 3:
                break
    val = _tiny_csv(tmp_path / "val.csv.gz", rows)
    _tiny_csv(tmp_path / "train.csv.gz", [rows[0] | {"proto_name": rows[0]["proto_name"]}])
    out = tmp_path / "csp.json"
    assert main(["csp-benchmark", str(val), "--samples", "2", "--generators", "diffusion,diffusion-sg,random",
                 "--weights", str(generator.weights), "--no-energy", "--unseen-prototypes", "--json", str(out),
                 "--no-progress"]) == 0
    data = json.loads(out.read_text())
    seen = {rows[0]["proto_name"]}
    expected = sum(1 for r in rows if r["proto_name"] not in seen)
    assert data["settings"]["unseen_prototype_rows"] == expected > 0
    assert data["summary_unseen_prototypes"]["diffusion-sg"]["rows"] == expected
    assert "unseen prototypes" in capsys.readouterr().out


def test_csp_refuses_diffusion_sg_with_an_unconditional_model(conditional, tmp_path, capsys):
    code = main(["csp-benchmark", str(VAL_CSV), "--limit", "1", "--samples", "1", "--generators", "diffusion-sg",
                 "--weights", str(conditional.base_dir / "checkpoint.pt"), "--no-energy", "--no-progress"])
    assert code == 2 and "--space-groups" in capsys.readouterr().err


def test_train_cli_conditions_and_warm_starts(val_tiny_args, tmp_path, capsys):
    base, run = tmp_path / "base", tmp_path / "run"
    assert main(["train-diffusion", "--train", str(VAL_CSV), "--limit", "24", "--out", str(base), "--steps", "3",
                 *val_tiny_args]) == 0
    assert main(["train-diffusion", "--train", str(VAL_CSV), "--limit", "24", "--out", str(run), "--steps", "3",
                 "--space-groups", "--init-from", str(base / "checkpoint.pt"), *val_tiny_args]) == 0
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["config"]["network"]["space_groups"] == 231
    assert main(["train-diffusion", "--train", str(VAL_CSV), "--limit", "24", "--out", str(run), "--steps", "4",
                 "--space-groups", "--export", str(tmp_path / "model.pt"), *val_tiny_args]) == 0
    slim = torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=False)
    assert slim["step"] == 4 and "optimizer" not in slim and "model" not in slim
    assert DiffusionGenerator(weights=tmp_path / "model.pt").conditional
    assert "starting from the weights of" in capsys.readouterr().err
    wider = ["--width", "32" if "16" in val_tiny_args else "16"]
    assert main(["train-diffusion", "--train", str(VAL_CSV), "--limit", "24", "--out", str(tmp_path / "w"),
                 "--steps", "3", "--init-from", str(base / "checkpoint.pt"), *val_tiny_args, *wider]) == 2
    assert "other network settings" in capsys.readouterr().err
    assert main(["train-diffusion", "--train", str(VAL_CSV), "--out", str(tmp_path / "x"),
                 "--init-from", str(tmp_path / "missing.pt")]) == 2
    assert "--init-from" in capsys.readouterr().err


@pytest.fixture
def val_tiny_args() -> list[str]:
    if not VAL_CSV.exists():
        pytest.skip(f"development data not found at {VAL_CSV}")
    return ["--width", "16", "--mults", "1,2", "--pair-dim", "8", "--batch-size", "8", "--threads", "2", "--no-progress"]


# -- the space-group prior of a conditional model ------------------------------------------------
def test_space_group_prior_allocates_by_largest_remainder_and_falls_back():
    from genms_pmg.structures.diffusion.space_group_prior import SpaceGroupPrior

    cells = [(Composition("SrTiO3"), 221)] * 6 + [(Composition("BaTiO3"), 99)] * 3 + [(Composition("CaTiO3"), 62)]
    cells += [(Composition("Sr2Ti2O6"), 62)] * 2  # the same stoichiometry type in a 10-atom cell
    prior = SpaceGroupPrior.from_cells(cells, source="test", min_support=3)
    key, probs = prior.distribution(Composition("KNbO3"), 5)
    assert key == "A1 B1 C3|ionic|5" and probs == pytest.approx({221: 0.6, 99: 0.3, 62: 0.1})
    assert prior.allocate(Composition("KNbO3"), 5, 8, unconditional_share=0.25) == [221, 221, 221, 221, 99, 99, 0, 0]
    # two 10-atom cells are below min_support: the type's counts over all sizes are used instead
    assert prior.distribution(Composition("K2Nb2O6"), 10)[0] == "A1 B1 C3|ionic"
    # Cu3Au-type intermetallics are not AlF3-type fluorides: electronegativity order and anions count
    types = SpaceGroupPrior.from_cells([(Composition("AlF3"), 167)] * 3 + [(Composition("Cu3Au"), 221)] * 3)
    assert types.distribution(Composition("FeF3"), 4)[1] == {167: 1.0}
    assert types.distribution(Composition("Cu3Pt"), 4)[1] == {221: 1.0}
    # an unseen stoichiometry type falls back to all cells; with no counts at all, every sample is free
    assert prior.distribution(Composition("NaCl"), 2)[0] == "*"
    assert SpaceGroupPrior({}).allocate(Composition("NaCl"), 2, 3) == [0, 0, 0]


def test_space_group_prior_round_trips_and_the_shipped_one_comes_from_training(tmp_path):
    from genms_pmg.structures.diffusion.space_group_prior import SpaceGroupPrior

    prior = SpaceGroupPrior.from_cells([(Composition("NaCl"), 225)] * 3, source="test")
    prior.save(tmp_path / "a.json.gz")
    prior.save(tmp_path / "b.json.gz")
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()
    assert SpaceGroupPrior.load(tmp_path / "a.json.gz").counts == prior.counts
    shipped = SpaceGroupPrior.load()
    assert shipped.source.startswith("train.csv.gz")
    # OQMD-ICSD's 5-atom ABC3 cells are mostly cubic perovskites (Pm-3m, 221)
    assert shipped.allocate(Composition("SrTiO3"), 5, 4)[0] == 221


def test_conditional_generator_draws_groups_from_the_prior_unless_told(generator, conditional):
    from genms_pmg.structures.diffusion.space_group_prior import SpaceGroupPrior

    prior = SpaceGroupPrior.from_cells([(Composition("SrTiO3"), 221)] * 3 + [(Composition("BaTiO3"), 99)],
                                       source="test")
    drawn = DiffusionGenerator(weights=conditional.out_dir / "checkpoint.pt", steps=5, space_group_prior=prior,
                               unconditional_share=0.25)
    made = drawn.generate_cell(Composition("SrTiO3"), n=4, seed=0)
    assert [g.info.get("space_group_condition") for g in made] == [221, 221, 99, None]
    told = drawn.generate_cell(Composition("SrTiO3"), n=2, seed=0, space_group=62)
    assert [g.info.get("space_group_condition") for g in told] == [62, 62]
    free = DiffusionGenerator(weights=conditional.out_dir / "checkpoint.pt", steps=5, space_group_prior=None)
    assert all("space_group_condition" not in g.info for g in free.generate_cell(Composition("SrTiO3"), n=2))
    # an unconditional model has nothing to condition: the prior is not loaded
    plain = DiffusionGenerator(weights=conditional.base_dir / "checkpoint.pt", steps=5)
    assert plain.space_group_prior is None
