"""`genms campaign`: many requests on a Dask cluster (a LocalCluster by default), resumable."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from genms_pmg.cli.common import (
    _make_out,
    _nonnegative_int,
    _positive_int,
    _read_forget,
)
from genms_pmg.errors import UsageError


def add_campaign_parser(sub) -> None:
    camp = sub.add_parser(
        "campaign", help="run many requests on a Dask cluster (LocalCluster or an existing scheduler)",
        description="Run every request of REQUESTS (one per line, or a JSON/YAML list of strings or "
        "{request, n, seed} objects) through the search. Each formula expansion is a unit of work on a Dask "
        "worker (models loaded once per worker, one thread each); each unit's result is written atomically "
        "under --out as it finishes, so --resume recomputes nothing that finished. Without --scheduler a "
        "LocalCluster of --workers processes is started. Writes <out>/NNN-<request>/results.json per request, "
        "campaign.json, campaign.md and campaign.png.")
    camp.add_argument("requests", type=Path, help="text file with one request per line, or a .json/.yaml list")
    camp.add_argument("--out", type=Path, required=True, help="campaign folder")
    where = camp.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (a Slurm cluster "
                       "from dask-jobqueue, Kubernetes, cloud)")
    where.add_argument("--workers", type=_positive_int, default=2, help="LocalCluster worker processes (default 2)")
    camp.add_argument("-n", type=_positive_int, default=3, help="structures per request (default 3)")
    camp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    camp.add_argument("--formulas", metavar="H", type=_positive_int, default=10, help="formulae proposed, H (default 10)")
    camp.add_argument("--structures", metavar="L", type=_positive_int, default=4, help="structures per formula, L (default 4)")
    camp.add_argument("--width", metavar="W", type=_positive_int, default=5, help="formulae expanded, W (default 5)")
    camp.add_argument("--generator", action="append", dest="generators", metavar="NAME",
                      help="structure generator plugin; repeat for several (default: diffusion and templates)")
    camp.add_argument("--energy-model", default="chgnet", help="energy model plugin (default chgnet)")
    camp.add_argument("--relax-top", metavar="K", type=_nonnegative_int, default=1,
                      help="structures of each formula relaxed after the energy screen (default 1; 0: none)")
    camp.add_argument("--forget", type=Path, metavar="FILE", default=None,
                      help="text file of formulae every unit treats as unknown (rediscovery campaigns)")
    camp.add_argument("--resume", action="store_true", help="continue a campaign in --out, reusing finished units")
    camp.add_argument("--force", action="store_true", help="start afresh in an --out folder that holds a campaign")
    camp.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def cmd_campaign(args: argparse.Namespace) -> int:
    from genms_pmg.campaign import Campaign, read_requests

    requests = read_requests(args.requests)  # a bad file is refused before any cluster starts
    forget = _read_forget(args.forget)
    if args.generators and len(set(args.generators)) != len(args.generators):
        raise UsageError("--generator names a generator twice; name each once")
    if args.resume and args.force:
        raise UsageError("--resume continues a campaign and --force starts afresh; give one of them")
    if args.out.exists() and any(args.out.iterdir()) and not (args.resume or args.force):
        raise UsageError(f"--out folder {args.out} already holds files; pass --resume to continue that campaign, "
                         "--force to start afresh, or choose an empty folder")
    _make_out(args.out)
    if args.force:
        for child in args.out.iterdir():  # only what a campaign writes
            if child.is_dir() and (child / "units").is_dir():
                shutil.rmtree(child)
            elif child.name in ("campaign.json", "campaign.md", "campaign.png"):
                child.unlink()
    campaign = Campaign(requests, out=args.out, workers=args.workers, scheduler=args.scheduler, n=args.n,
                        forget=forget, progress=not args.no_progress, seed=args.seed, formulas=args.formulas,
                        structures=args.structures, width=args.width, generators=args.generators,
                        energy_model=args.energy_model, relax=args.relax_top > 0, relax_top=max(args.relax_top, 1))
    try:
        summary = campaign.run()
    finally:
        campaign.close()
    print((args.out / "campaign.md").read_text())
    print(f"units: {summary['units_computed']} computed, {summary['units_reused']} reused from earlier runs; "
          f"results in {args.out}")
    return 0 if not any("error" in r for r in summary["requests"]) else 2
