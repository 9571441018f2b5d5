"""`genms train-diffusion`, `csp-benchmark` and `benchmark`: training and the paper's evaluations."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from genms_pmg.cli.common import _check_csv, _make_out, _write_atomic
from genms_pmg.errors import UsageError


def _cmd_train_diffusion(args: argparse.Namespace) -> int:
    for path in args.train:
        _check_csv(path, "--train")
    if args.val is not None:
        _check_csv(args.val, "--val")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder path")
    from genms_pmg.structures.diffusion.trainer import CHECKPOINT

    resuming = (args.out / CHECKPOINT).exists()
    if args.out.is_dir() and not resuming and any(args.out.iterdir()) and not args.force:
        raise UsageError(f"--out folder {args.out} holds files but no {CHECKPOINT}; choose an empty folder or pass --force")
    import torch

    from genms_pmg.structures.diffusion import (
        CrystalDenoiser,
        CrystalDiffusion,
        DiffusionTrainer,
    )
    from genms_pmg.structures.diffusion.representation import load_structures_csv

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export is not None and (args.export.is_dir() or not args.export.parent.is_dir()):
        raise UsageError(f"--export {args.export} must be a file path in an existing folder, e.g. model.pt")
    if args.init_from is not None and not args.init_from.is_file():
        raise UsageError(f"--init-from {args.init_from} does not exist; give a checkpoint such as the shipped model.pt")
    if not 0 <= args.p_uncond < 1:
        raise UsageError(f"--p-uncond must be in [0, 1), got {args.p_uncond}")
    if args.bucket_width < 0:
        raise UsageError(f"--bucket-width must be 0 (off) or more, got {args.bucket_width}")
    network_config = {"width": args.width, "mults": tuple(args.mults), "blocks_per_level": args.blocks_per_level,
                      "dropout": args.dropout, "pair_dim": args.pair_dim, "space_groups": 231 if args.space_groups else 0}
    if resuming:
        saved = torch.load(args.out / CHECKPOINT, map_location="cpu", weights_only=False)["config"]
        saved_network = {"pair_dim": 0, "space_groups": 0, **saved["network"], "mults": tuple(saved["network"]["mults"])}
        mismatch = {k: (saved_network.get(k), v) for k, v in network_config.items() if saved_network.get(k) != v}
        if saved["diffusion"]["coords"] != args.coords:
            mismatch["coords"] = (saved["diffusion"]["coords"], args.coords)
        if mismatch:
            detail = ", ".join(f"{k}: saved {a} vs given {b}" for k, (a, b) in mismatch.items())
            raise UsageError(f"{args.out} holds a run with other settings ({detail}); use a new --out or the saved settings")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load = {"max_atoms": args.max_atoms, "limit": args.limit, "niggli": args.niggli}
        train = [s for path in args.train for s in load_structures_csv(path, **load)]
        val = load_structures_csv(args.val, **load) if args.val else None
    if not train:
        raise UsageError(f"no structures with at most {args.max_atoms} sites in {', '.join(map(str, args.train))}")
    network = CrystalDenoiser(**network_config)
    diffusion = CrystalDiffusion(network, coords=args.coords)
    try:
        trainer = DiffusionTrainer(
            diffusion, train, out_dir=args.out, val=val, max_atoms=args.max_atoms, batch_size=args.batch_size,
            lr=args.lr, ema_decay=args.ema, save_every=args.save_every, val_every=args.val_every,
            keep_every=args.keep_every, total_steps=args.steps, seed=args.seed, device=args.device,
            progress=not args.no_progress, p_uncond=args.p_uncond, bucket_width=args.bucket_width,
            init_from=args.init_from,
        )
    except ValueError as err:
        raise UsageError(f"--init-from: {err}") from None
    n_params = sum(p.numel() for p in network.parameters())
    if resuming:
        last = trainer.resumed_from or {}
        print(f"resuming the run in {args.out}: checkpoint of step {trainer.step} saved {last.get('saved_at') or 'earlier'}"
              f"{' on ' + last['saved_on'] if last.get('saved_on') else ''}, {trainer.elapsed_s / 60:.0f} min trained so far "
              "(logged as a 'resumed' event in log.jsonl)", file=sys.stderr)
    elif args.init_from is not None:
        print(f"starting from the weights of {args.init_from}", file=sys.stderr)
    print(f"{'resuming at step ' + str(trainer.step) if resuming else 'starting'}: {len(train)} training structures"
          f"{f', {len(val)} validation' if val else ''}, {n_params / 1e6:.2f}M parameters, {args.steps} steps",
          file=sys.stderr)
    step = trainer.train(args.steps)
    print(f"trained to step {step}; checkpoint {args.out / CHECKPOINT}, log {args.out / 'log.jsonl'}", file=sys.stderr)
    if args.export is not None:
        from genms_pmg.structures.diffusion.trainer import export_weights

        export_weights(args.out / CHECKPOINT, args.export)
        print(f"sampling weights written to {args.export}", file=sys.stderr)
    return 0


# -- csp-benchmark --------------------------------------------------------------------------
def _cmd_csp_benchmark(args: argparse.Namespace) -> int:
    _check_csv(args.csv, "CSV")
    generators = [g.strip() for g in args.generators.split(",") if g.strip()]
    if not generators or len(set(generators)) != len(generators):
        raise UsageError(f"--generators {args.generators!r} must name distinct generators, e.g. diffusion,templates,random")
    if args.weights is not None and not args.weights.is_file():
        raise UsageError(f"--weights {args.weights} does not exist; give a checkpoint.pt written by genms train-diffusion")
    if args.json is not None:
        if args.json.is_dir():
            raise UsageError(f"--json {args.json} is a folder; give a file name such as csp.json")
        if args.json.exists() and not args.force:
            raise UsageError(f"--json {args.json} exists; pass --force to replace it (finished rows are reused)")
        if not args.json.parent.exists():
            raise UsageError(f"folder {args.json.parent} does not exist; create it or choose another --json path")
    train_csv = None
    if args.unseen_prototypes:
        train_csv = args.train if args.train is not None else args.csv.with_name("train.csv.gz")
        _check_csv(train_csv, "--train")
    from genms_pmg.evaluation.csp import (
        format_table,
        load_benchmark_rows,
        plot_summary,
        run_csp_benchmark,
        summarize,
        training_prototypes,
        unseen_prototype_rows,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = load_benchmark_rows(args.csv, limit=args.limit, max_atoms=args.max_atoms)
    if not rows:
        raise UsageError(f"{args.csv} has no structures with at most {args.max_atoms} sites")
    if args.relax_top < 0 or (args.relax_top and args.no_energy):
        raise UsageError("--relax-top needs a count of 0 or more and the energy model (drop --no-energy)")
    energy_model = None
    if not args.no_energy:
        from genms_pmg.plugins import create

        energy_model = create("energy_models", "chgnet")
    records_path = args.json.with_suffix(".records.jsonl") if args.json is not None else None
    summary, records = run_csp_benchmark(
        rows, generators, k=args.samples, seed=args.seed, records_path=records_path, energy_model=energy_model,
        diffusion_weights=args.weights, diffusion_steps=args.steps, diffusion_sampler=args.sampler,
        progress=not args.no_progress, relax_top=args.relax_top,
    )
    settings = {"csv": str(args.csv), "rows": len(rows), "samples": args.samples, "generators": generators,
                "seed": args.seed, "max_atoms": args.max_atoms, "diffusion_steps": args.steps,
                "diffusion_sampler": args.sampler, "weights": str(args.weights) if args.weights else "shipped",
                "energy_ranking": energy_model is not None, "relax_top": args.relax_top}
    print(format_table(summary))
    payload = {"settings": settings, "summary": summary, "records": records}
    if train_csv is not None:
        try:
            unseen = unseen_prototype_rows(rows, training_prototypes(train_csv))
        except ValueError as err:
            raise UsageError(f"--unseen-prototypes: {err}; give --train a CSV with a proto_name column") from None
        ids = {r.row_id for r in unseen}
        subset = summarize([r for r in records if r["row_id"] in ids], generators, [r.row_id for r in unseen])
        settings["unseen_prototype_rows"] = len(unseen)
        payload["summary_unseen_prototypes"] = subset
        print(f"\nunseen prototypes ({len(unseen)} of {len(rows)} rows: OQMD prototype label absent from {train_csv.name})")
        print(format_table(subset) if unseen else "no such rows")
    if args.json is not None:
        _write_atomic(args.json, json.dumps(payload))
        plot_summary(summary, args.json.with_suffix(".png"))
        print(f"\nsummary and records in {args.json}, plot in {args.json.with_suffix('.png')}")
    return 0


def _cmd_benchmark_sun(args: argparse.Namespace) -> int:
    from genms_pmg import plugins
    from genms_pmg.evaluation.families import family_name
    from genms_pmg.evaluation.sun import SUN_FAMILIES, run_sun_benchmark

    families = list(dict.fromkeys(args.families or SUN_FAMILIES))
    for key in families:
        family_name(key)
    names = {info.name for info in plugins.discover("energy_models")}
    if args.judge not in names:
        raise UsageError(f"no energy-model plugin {args.judge!r}; installed: {', '.join(sorted(names))} "
                         "(the SevenNet judge: pip install ./plugins/genms-sevennet)")
    _make_out(args.out)
    from genms_pmg.evaluation.records import read_records
    from genms_pmg.evaluation.sun_report import plot_all, to_markdown

    rankings = ("before", "after") if args.ranking == "both" else (args.ranking,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_sun_benchmark(families, out=args.out, judge=args.judge, rankings=rankings, samples=args.samples,
                                    seed=args.seed, formulas=args.formulas, width=args.width,
                                    relax_top=args.relax_top, calibration=tuple(args.calibration), progress=not args.no_progress)
        records = read_records(args.out / "records.jsonl")
        plot_all(summary, records, args.out)
    command = f"genms benchmark sun --out {args.out}"
    if args.families:
        command += " --families " + " ".join(families)
    defaults = {"judge": "sevennet", "ranking": "both", "samples": 5, "seed": 0, "formulas": 20, "width": 10,
                "relax_top": 2}
    command += "".join(f" --{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v)
    if tuple(args.calibration) != (40, 20):
        command += " --calibration {} {}".format(*args.calibration)
    report = to_markdown(summary, command=command)
    _write_atomic(args.out / "report.md", report)
    _write_atomic(args.out / "summary.json", json.dumps(summary, indent=1))
    print(report.split("## Per family")[0])
    print(f"report, summary and figures in {args.out}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    if args.benchmark == "sun":
        return _cmd_benchmark_sun(args)
    if args.benchmark == "rediscovery":
        from genms_pmg.evaluation.rediscovery import run_command

        return run_command(args)
    if args.benchmark != "families":
        raise UsageError("name a benchmark: genms benchmark families|sun --out DIR (see genms benchmark sun --help)")
    from genms_pmg.evaluation.families import DEFAULT_FAMILIES, family_name

    families = list(dict.fromkeys(args.families or DEFAULT_FAMILIES))
    for key in families:
        family_name(key)  # unknown keys are a one-line error before any work
    if args.relax_top < 0:
        raise UsageError(f"--relax-top must be 0 or more, got {args.relax_top}")
    _make_out(args.out)
    from genms_pmg.evaluation.families import run_families_benchmark
    from genms_pmg.evaluation.families_report import plot_all, to_markdown
    from genms_pmg.evaluation.records import read_records

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_families_benchmark(
            families, out=args.out, samples=args.samples, seed=args.seed, formulas=args.formulas,
            structures=args.structures, width=args.width, relax_top=args.relax_top, generators=args.generators,
            progress=not args.no_progress)
        records = [r for r in read_records(args.out / "records.jsonl") if r["family"] in families]
        plot_all(summary, records, args.out)
    command = "genms benchmark families --families " + " ".join(families) + f" --samples {args.samples} --out {args.out}"
    defaults = {"seed": 0, "formulas": 20, "structures": 4, "width": 20, "relax_top": 5}
    command += "".join(f" --{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v)
    command += "".join(f" --generator {g}" for g in args.generators or [])
    report = to_markdown(summary, command=command, records=records)
    _write_atomic(args.out / "report.md", report)
    _write_atomic(args.out / "summary.json", json.dumps(summary, indent=1))
    print(report.split("## By generator")[0])
    print(f"report, summary, figures and CIFs in {args.out}")
    return 0
