"""`genms train-diffusion`, the random baseline and `genms csp-benchmark`, with real pyxtal, CHGNet and StructureMatcher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Composition

from genms_pmg.cli import main
from genms_pmg.evaluation.csp import (
    load_benchmark_rows,
    make_matcher,
    run_csp_benchmark,
    score_samples,
    summarize,
)
from genms_pmg.structures.random_symmetric import RandomSymmetricGenerator

VAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "oqmd_icsd" / "val.csv.gz"
TINY_ARGS = ["--width", "16", "--mults", "1,2", "--batch-size", "8", "--lr", "1e-3", "--threads", "2", "--no-progress"]


@pytest.fixture(scope="module")
def val_csv() -> Path:
    if not VAL_CSV.exists():
        pytest.skip(f"development data not found at {VAL_CSV}")
    return VAL_CSV


@pytest.fixture(scope="module")
def tiny_run(val_csv, tmp_path_factory) -> Path:
    """A diffusion model trained by the CLI into a temporary folder (seconds)."""
    out = tmp_path_factory.mktemp("run")
    code = main(["train-diffusion", "--train", str(val_csv), "--val", str(val_csv), "--limit", "40", "--out", str(out),
                 "--steps", "8", "--save-every", "4", "--val-every", "4", "--keep-every", "4", *TINY_ARGS])
    assert code == 0
    return out


def test_train_cli_writes_checkpoint_log_and_kept_copies(tiny_run):
    ckpt = torch.load(tiny_run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["step"] == 8 and ckpt["config"]["network"]["width"] == 16
    assert ckpt["elapsed_s"] > 0
    assert (tiny_run / "checkpoint-4.pt").exists() and (tiny_run / "checkpoint-8.pt").exists()
    log = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val_loss" in r] == [4, 8]
    assert all(np.isfinite(r["loss"]) for r in log if "loss" in r)


def test_train_cli_resumes_from_the_last_checkpoint(tiny_run, val_csv, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint-4.pt",):
        (run / "checkpoint.pt").write_bytes((tiny_run / name).read_bytes())
    code = main(["train-diffusion", "--train", str(val_csv), "--limit", "40", "--out", str(run), "--steps", "6",
                 "--save-every", "2", *TINY_ARGS])
    assert code == 0
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["step"] == 6
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert min(r["step"] for r in log if "event" not in r) > 4  # steps 1-4 came from the checkpoint, not retrained
    assert [(r["event"], r["step"], r["target_steps"]) for r in log if "event" in r] == [("resumed", 4, 6)]


def test_train_cli_refuses_other_settings_in_a_run_folder(tiny_run, val_csv, capsys):
    code = main(["train-diffusion", "--train", str(val_csv), "--out", str(tiny_run), "--width", "32", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "width: saved 16 vs given 32" in err and "new --out" in err


def test_train_cli_missing_csv_is_a_usage_error(tmp_path, capsys):
    code = main(["train-diffusion", "--train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "run")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_random_baseline_has_exact_cell_and_is_seeded():
    gen = RandomSymmetricGenerator()
    cell = Composition("Mg2Al4O8")
    first = gen.generate_cell(cell, n=3, seed=7)
    again = gen.generate_cell(cell, n=3, seed=7)
    assert len(first) == 3
    for a, b in zip(first, again):
        assert a.structure.composition == cell
        assert np.allclose(a.structure.frac_coords, b.structure.frac_coords)
    sampled = gen.generate(Composition("NaCl"), n=4, seed=1, max_atoms=8)
    assert sampled and all(len(g.structure) <= 8 and g.structure.composition.reduced_formula == "NaCl" for g in sampled)


def test_score_samples_matches_a_perturbed_reference_and_rejects_an_overlapping_cell(val_csv):
    row = load_benchmark_rows(val_csv, limit=1)[0]  # Ca(SiAu)2, ThCr2Si2 type
    moved = row.structure.copy()
    moved.perturb(0.05, min_distance=0.0)
    moved.translate_sites(list(range(len(moved))), [0.13, 0.0, 0.27])  # origin shift: still the same crystal
    squashed = row.structure.copy()
    squashed.scale_lattice(row.structure.volume * 0.001)  # distances shrink tenfold: atoms overlap
    records = score_samples(row, [moved, squashed], matcher=make_matcher())
    assert records[0]["valid"] and records[0]["rms"] is not None and records[0]["rms"] < 0.1
    assert not records[1]["valid"] and records[1]["rms"] is None


def test_summary_counts_rows_without_samples_as_misses():
    hit = {"valid": True, "comp_valid": True, "rms": 0.02, "energy": -5.0}
    miss = {"valid": True, "comp_valid": True, "rms": None, "energy": -6.0}
    records = [
        {"generator": "a", "row_id": "r0", "samples": [miss, hit], "seconds": 1.0},
        {"generator": "b", "row_id": "r0", "samples": [hit], "seconds": 1.0},
    ]
    summary = summarize(records, ["a", "b"], ["r0", "r1"])
    assert summary["a"]["match@1"] == 0.0 and summary["a"]["match@K"] == 0.5
    assert summary["a"]["match@1_energy"] == 0.0  # the lower-energy sample is the miss
    assert summary["b"]["match@1"] == 0.5 and summary["b"]["rmse@1"] == pytest.approx(0.02)
    assert summary["union"]["match@K"] == 0.5 and summary["union"]["match@1_energy"] == 0.0


def test_csp_benchmark_end_to_end_leaves_formulas_out_and_resumes(tiny_run, val_csv, tmp_path):
    from genms_pmg.energy.chgnet_model import CHGNetEnergyModel

    rows = load_benchmark_rows(val_csv, limit=3)
    records_path = tmp_path / "records.jsonl"
    summary, records = run_csp_benchmark(
        rows, ["templates", "random", "diffusion"], k=3, seed=0, records_path=records_path,
        energy_model=CHGNetEnergyModel(), diffusion_weights=tiny_run / "checkpoint.pt", progress=False,
    )
    assert set(summary) == {"templates", "random", "diffusion", "union"}
    for name in ("templates", "random", "diffusion"):
        m = summary[name]
        assert m["rows"] == 3 and 0 <= m["match@1"] <= m["match@K"] <= 1
        assert m["structures"] > 0 and m["seconds_per_structure"] > 0
    assert summary["union"]["match@K"] >= max(summary[n]["match@K"] for n in ("templates", "random", "diffusion"))
    by_gen = [r for r in records if r["generator"] == "diffusion"]
    assert all(len(r["samples"]) == 3 for r in by_gen)  # exact cell, K each
    assert all(s["energy"] is not None for r in by_gen for s in r["samples"] if s["valid"])
    assert len(records_path.read_text().splitlines()) == 9

    called = []
    again, _ = run_csp_benchmark(
        rows, ["templates", "random", "diffusion"], k=3, seed=0, records_path=records_path,
        energy_model=CHGNetEnergyModel(), diffusion_weights=tiny_run / "checkpoint.pt", progress=False,
        on_record=called.append,
    )
    assert called == [] and again == summary  # everything came from the records file


def test_templates_never_use_a_benchmark_formula(val_csv):
    from genms_pmg.evaluation.csp import generate_for_row, make_csp_generator

    rows = load_benchmark_rows(val_csv, limit=4)
    generator, _ = make_csp_generator("templates", exclude_formulas=[r.formula for r in rows])
    for row in rows:
        made = generator.generate(row.structure.composition.reduced_composition, n=5, max_atoms=len(row.structure))
        assert all(Composition(g.info.get("template_formula", "X")).reduced_formula != row.formula for g in made)
        samples, _ = generate_for_row(generator, row, k=5, seed=0)
        assert all(len(s) <= len(row.structure) for s in samples)


def test_csp_cli_writes_json_and_plot_and_refuses_to_overwrite(tiny_run, val_csv, tmp_path, capsys):
    out = tmp_path / "csp.json"
    args = ["csp-benchmark", str(val_csv), "--limit", "2", "--samples", "2", "--generators", "diffusion,random",
            "--weights", str(tiny_run / "checkpoint.pt"), "--no-energy", "--json", str(out), "--no-progress"]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["settings"]["rows"] == 2 and set(data["summary"]) == {"diffusion", "random", "union"}
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "| diffusion |" in capsys.readouterr().out
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["csp-benchmark", str(val_csv), "--generators", "random,random"]) == 2
