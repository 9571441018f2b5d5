"""The ``genms`` command: generate structures from a sentence, list plugins, inspect requests.

Errors GenMS raises on purpose print one line (``genms: error: ...``) and exit with their code
(2 for usage errors); nothing is written half-way: every output file is replaced atomically and an
output folder that already holds files is refused unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from genms_pmg.errors import GenMSError, GenMSWarning, UsageError

RESULTS_NAME = "results.json"
CHECKPOINT_NAME = ".genms-search-state.json"

EXAMPLES = """examples:
  genms generate "a stable spinel oxide containing Mg" -n 3 --out results/ --seed 0
  genms generate "a cubic perovskite fluoride" --formulas 20 --structures 8 --width 6 --json
  OPENAI_BASE_URL=http://127.0.0.1:8080/v1 genms generate "a spinel oxide containing Mg" --proposer llm --llm-model NAME
  genms parse "a lead-free halide double perovskite"
  genms propose "a stable pyrochlore oxide that is not in Materials Project" -n 20 --json
  genms known CaTiO3 Ba2MgWO6
  genms plugins
  genms train-diffusion --train train.csv.gz --val val.csv.gz --out runs/diffusion --steps 40000
  genms csp-benchmark val.csv.gz --limit 500 --samples 20 --generators diffusion,templates,random --json csp.json
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line that says what to do (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"genms: error: {message} (see `{self.prog} --help`)\n")


def _number_type(convert, *, what: str, accept) -> Callable[[str], float]:
    """An argparse ``type`` that converts with ``convert`` and keeps values ``accept`` allows."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


_positive_int = _number_type(int, what="a positive whole number", accept=lambda v: v >= 1)
_nonnegative_int = _number_type(int, what="a whole number >= 0", accept=lambda v: v >= 0)
_positive_float = _number_type(float, what="a positive number", accept=lambda v: v > 0)
_nonnegative_float = _number_type(float, what="a number >= 0, e.g. 0.05", accept=lambda v: v >= 0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="genms",
        description="GenMS: candidate crystal structures from a sentence "
        "(Generative Hierarchical Materials Search, Yang et al. 2024).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    gen = sub.add_parser(
        "generate", help="search for crystal structures that answer a request",
        description="Parse REQUEST, propose formulae (pi_hi), check and rank them (R_hi), generate structures "
        "(pi_lo), score them with the energy model (R_lo) and write the best as CIFs plus results.json.",
    )
    gen.add_argument("request", help='what you want, e.g. "a stable spinel oxide containing Mg"')
    gen.add_argument("-n", type=_positive_int, default=3, help="number of structures to return (default 3)")
    gen.add_argument("--out", type=Path, default=None, help="folder for rank-NN-<formula>.cif and results.json")
    gen.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same result (default 0)")
    gen.add_argument("--formulas", metavar="H", type=_positive_int, default=10, help="formulae proposed, H (default 10)")
    gen.add_argument("--structures", metavar="L", type=_positive_int, default=4, help="structures per formula and generator, L (default 4)")
    gen.add_argument("--width", metavar="W", type=_positive_int, default=5, help="formulae expanded into structures, W (default 5)")
    gen.add_argument("--proposer", default="offline",
                     help="formula proposer plugin (default offline; llm asks an OpenAI-compatible LLM)")
    gen.add_argument("--llm-model", metavar="NAME", default=None,
                     help="model for --proposer llm and --llm-rank (default: $GENMS_LLM_MODEL); the endpoint is "
                     "$OPENAI_BASE_URL (e.g. http://127.0.0.1:8080/v1), the key $OPENAI_API_KEY (optional for "
                     "local servers); an unreachable endpoint falls back to offline proposals with a warning")
    gen.add_argument("--llm-rank", action="store_true",
                     help="also let the LLM score 0-10 how well each formula fits the request (soft R_hi)")
    gen.add_argument("--generator", action="append", dest="generators", metavar="NAME",
                     help="structure generator plugin; repeat for several (default: diffusion and templates)")
    gen.add_argument("--energy-model", default="chgnet", help="energy model plugin (default chgnet)")
    gen.add_argument("--no-relax", dest="relax", action="store_false",
                     help="rank unrelaxed structures (faster; energies above the hull are then less meaningful)")
    gen.add_argument("--relax-top", metavar="K", type=_nonnegative_int, default=1,
                     help="structures of each expanded formula relaxed after the energy screen (default 1)")
    gen.add_argument("--max-e-hull", metavar="EV", type=_nonnegative_float, default=None,
                     help="drop structures more than EV eV/atom above the convex hull of known phases (default: "
                     "0.025 for 'stable' and 'new' requests, chosen by calibration on known compounds; 0.1 for 'metastable'; "
                     "no bound otherwise)")
    gen.add_argument("--force", action="store_true", help="write into an --out folder that already holds files "
                     "(GenMS's own earlier outputs there are replaced; other files are left alone)")
    gen.add_argument("--resume", action="store_true", help="continue an interrupted search saved in --out")
    gen.add_argument("--json", action="store_true", help="print machine-readable results to stdout instead of the table")
    gen.add_argument("--avoid", type=Path, metavar="FILE", help="text file of formulae to avoid, one per line")
    gen.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_knowledge_options(gen)

    plug = sub.add_parser("plugins", help="list installed plugins and whether they load",
                          description="List every plugin of every genms.* entry-point group with its state; "
                          "broken plugins are shown with their cause.")
    plug.add_argument("--json", action="store_true", help="machine-readable output")

    parse = sub.add_parser("parse", help="show how a request is understood",
                           description="Print the parsed Request as JSON, including the words that were ignored.")
    parse.add_argument("request")
    parse.add_argument("--avoid", type=Path, metavar="FILE", help="text file of formulae to avoid, one per line")
    parse.add_argument("--cards", type=_positive_int, metavar="K", default=None,
                       help="also show the K family cards retrieval hands to the proposers, with why")
    _add_knowledge_options(parse)

    prop = sub.add_parser(
        "propose", help="propose and rank formulae for a request (pi_hi and R_hi, no structures)",
        description="Parse REQUEST, propose formulae with the proposer plugin and judge each with every formula "
        "heuristic (R_hi). Prints the formulae that pass every hard check, best first, with their scores and the "
        "reasons behind them; --all also lists the rejected ones with why.",
    )
    prop.add_argument("request", help='what you want, e.g. "a stable spinel oxide containing Mg"')
    prop.add_argument("-n", type=_positive_int, default=20, help="formulae to propose (default 20)")
    prop.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    prop.add_argument("--proposer", default="offline",
                      help="formula proposer plugin (default offline; llm asks an OpenAI-compatible LLM)")
    prop.add_argument("--llm-model", metavar="NAME", default=None,
                      help="model for --proposer llm and --llm-rank (default: $GENMS_LLM_MODEL; endpoint $OPENAI_BASE_URL)")
    prop.add_argument("--llm-rank", action="store_true",
                      help="also let the LLM score 0-10 how well each formula fits the request (soft R_hi)")
    prop.add_argument("--avoid", type=Path, metavar="FILE", help="text file of formulae to avoid, one per line")
    prop.add_argument("--all", action="store_true", help="also list the formulae a hard check rejected")
    prop.add_argument("--json", action="store_true", help="machine-readable output")
    _add_knowledge_options(prop)

    known = sub.add_parser(
        "known", help="is a formula already in Materials Project or ICSD?",
        description="Look FORMULA up in the known-formula index (Materials Project formulae of matbench mp_e_form "
        "and the OQMD-ICSD structures) and print where it was found. Exit code 0 either way.",
    )
    known.add_argument("formula", nargs="+", help="one or more formulae, e.g. CaTiO3 Ba2MgWO6")
    known.add_argument("--json", action="store_true", help="machine-readable output")
    _add_knowledge_options(known)

    train = sub.add_parser(
        "train-diffusion", help="train the structure diffusion model (pi_lo) on CIF structures",
        description="Train the compact-representation diffusion model on CSV files with a 'cif' column "
        "(MP-20 layout). Writes checkpoint.pt (atomically, every --save-every steps) and log.jsonl to --out; "
        "rerunning the same command resumes from the last checkpoint.",
    )
    train.add_argument("--train", action="append", required=True, type=Path, metavar="CSV",
                       help="training CSV(.gz) with a 'cif' column; repeat to combine several")
    train.add_argument("--val", type=Path, metavar="CSV", help="validation CSV(.gz) for the logged validation loss")
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoint.pt, log.jsonl)")
    train.add_argument("--steps", type=_positive_int, default=40000, help="total optimisation steps (default 40000)")
    train.add_argument("--batch-size", type=_positive_int, default=64, help="structures per step (default 64)")
    train.add_argument("--lr", type=_positive_float, default=5e-4, help="peak learning rate (default 5e-4, cosine-decayed)")
    train.add_argument("--width", type=_positive_int, default=64, help="base hidden width (default 64)")
    train.add_argument("--mults", type=_int_tuple, default=(1, 2, 4), help="width multipliers per level (default 1,2,4)")
    train.add_argument("--blocks-per-level", type=_positive_int, default=1, help="MLP+attention blocks per level and path (default 1)")
    train.add_argument("--pair-dim", type=int, default=64,
                       help="pair embedding of fractional-coordinate differences in attention (default 64; 0: plain attention)")
    train.add_argument("--dropout", type=float, default=0.0, help="dropout (default 0: short runs underfit)")
    train.add_argument("--coords", choices=("wrapped", "naive"), default="wrapped",
                       help="coordinate noise: wrapped normal on the torus (default) or naive DDPM baseline")
    train.add_argument("--max-atoms", type=_positive_int, default=20, help="largest cell kept, in sites (default 20)")
    train.add_argument("--ema", type=float, default=0.999, help="EMA decay of the kept weights (default 0.999)")
    train.add_argument("--save-every", type=_positive_int, default=1000, help="checkpoint interval in steps (default 1000)")
    train.add_argument("--keep-every", type=_positive_int, default=None, help="also keep checkpoint-<step>.pt copies at this interval")
    train.add_argument("--val-every", type=_positive_int, default=1000, help="validation interval in steps (default 1000)")
    train.add_argument("--limit", type=_positive_int, default=None, help="use only the first N structures of each CSV")
    train.add_argument("--no-niggli", dest="niggli", action="store_false",
                       help="keep the CSV's cells instead of Niggli-reducing them (the default reduces)")
    train.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    train.add_argument("--seed", type=int, default=0, help="seed for initialisation, batches and noise (default 0)")
    train.add_argument("--force", action="store_true", help="train into an --out folder that holds other files")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    bench = sub.add_parser("benchmark", help="reproduce the paper's evaluations (see `genms benchmark families --help`)",
                           description="Benchmarks that follow the paper's protocols; results go to --out.")
    bench_sub = bench.add_subparsers(dest="benchmark", metavar="NAME", parser_class=_Parser)
    fam = bench_sub.add_parser(
        "families", help="Table 1: end-to-end generation per crystal family, beside the paper",
        description="For each family, run the whole search on 'a stable <family> that is not in Materials Project' and a "
        "second phrasing, write every returned structure as a CIF, and report CIF, structural and composition validity, "
        "uniqueness against Materials Project and ICSD, family match rate (StructureMatcher(stol=0.5, ltol=0.3, "
        "angle_tol=10).fit_anonymous against the family's references) and CHGNet formation energy before and after "
        "relaxing the best structures. Writes report.md, summary.json, records.jsonl, PNG figures and cifs/ to --out; "
        "rerunning the same command resumes.",
    )
    fam.add_argument("--families", nargs="+", metavar="FAMILY", default=None,
                     help="family card keys (default: perovskite pyrochlore spinel double_perovskite elpasolite "
                     "ruddlesden_popper olivine ilmenite delafossite chalcopyrite half_heusler heusler)")
    fam.add_argument("--samples", type=_positive_int, default=20, help="structures returned per request (default 20)")
    fam.add_argument("--out", type=Path, required=True, help="results folder, e.g. benchmarks/results/2026-11-21/")
    fam.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fam.add_argument("--formulas", metavar="H", type=_positive_int, default=20, help="formulae proposed, H (default 20)")
    fam.add_argument("--structures", metavar="L", type=_positive_int, default=4,
                     help="structures per formula and generator, L (default 4)")
    fam.add_argument("--width", metavar="W", type=_positive_int, default=20,
                     help="formulae expanded, W (default 20: each returned structure is the best of its formula)")
    fam.add_argument("--relax-top", type=int, default=5, metavar="K",
                     help="relax the K best-ranked structures per family with CHGNet (default 5; 0: none)")
    fam.add_argument("--generator", action="append", dest="generators", metavar="NAME",
                     help="structure generator plugin; repeat for several (default: diffusion and templates)")
    fam.add_argument("--no-progress", action="store_true", help="hide progress bars")
    from genms_pmg.evaluation import rediscovery as _rediscovery

    _rediscovery.add_arguments(bench_sub.add_parser(
        "rediscovery", help="hide known members of each family (--forget) and measure whether 'a new <family>' "
        "proposes them again (precision@10, recall@50 against a uniform baseline)"))
    sun = bench_sub.add_parser(
        "sun", help="stable / unique / novel rates of 'new <family>' requests, judged by an independent potential",
        description="For each family, the search answers 'a new <family> that is not in Materials Project or ICSD'; "
        "the top --samples candidates are relaxed by the judge (an energy-model plugin, SevenNet by default) and placed "
        "on the judge's convex hull of every OQMD-ICSD phase of their system. Reports stable (E_hull <= 0 and <= 0.1), "
        "unique, novel, family match and S.U.N. rates per family, before (no relaxation, formation-energy ranking) and "
        "after (relaxation + hull), the Spearman correlation of the ranking with the judge, and the calibration of both "
        "models on known compounds. Writes report.md, summary.json, records.jsonl and PNG figures; reruns resume.",
    )
    sun.add_argument("--families", nargs="+", metavar="FAMILY", default=None,
                     help="family card keys (default: the 12 of `benchmark families` plus garnet)")
    sun.add_argument("--out", type=Path, required=True, help="results folder, e.g. benchmarks/results/2026-12-02/sun")
    sun.add_argument("--judge", default="sevennet", help="energy-model plugin that judges (default sevennet)")
    sun.add_argument("--ranking", choices=("before", "after", "both"), default="both",
                     help="which search ranking to judge (default both)")
    sun.add_argument("--samples", type=_positive_int, default=5, help="candidates judged per family (default 5)")
    sun.add_argument("--relax-top", metavar="K", type=_nonnegative_int, default=2,
                     help="structures relaxed per expanded formula by the 'after' search (default 2)")
    sun.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sun.add_argument("--formulas", metavar="H", type=_positive_int, default=20, help="formulae proposed, H (default 20)")
    sun.add_argument("--width", metavar="W", type=_positive_int, default=10, help="formulae expanded, W (default 10)")
    sun.add_argument("--calibration", nargs=2, type=_nonnegative_int, default=(40, 20), metavar=("ON", "ABOVE"),
                     help="known compounds on the OQMD hull and 0.1-0.3 eV/atom above it to calibrate on (default 40 20)")
    sun.add_argument("--no-progress", action="store_true", help="hide progress bars")

    csp = sub.add_parser(
        "csp-benchmark", help="crystal structure prediction benchmark of the structure generators",
        description="For each row of CSV (a 'cif' column), generate --samples structures for its exact cell "
        "composition with each generator and report validity, match rate @1 (first and energy-ranked) and "
        "@K with StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10), RMSE and seconds per structure. "
        "Templates leave out every reference whose formula is in the benchmark set.",
    )
    csp.add_argument("csv", type=Path, help="CSV(.gz) with a 'cif' column, e.g. ../shared/data/oqmd_icsd/val.csv.gz")
    csp.add_argument("--limit", type=_positive_int, default=None, help="use the first N rows (default: all)")
    csp.add_argument("--samples", "-k", type=_positive_int, default=20, help="structures per row and generator, K (default 20)")
    csp.add_argument("--generators", default="diffusion,templates,random",
                     help="comma-separated generators (default diffusion,templates,random)")
    csp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    csp.add_argument("--json", type=Path, default=None, metavar="OUT",
                     help="write the summary and per-row records here, a plot beside it (OUT.png), and keep "
                     "finished rows in OUT.records.jsonl so a rerun resumes")
    csp.add_argument("--max-atoms", type=_positive_int, default=20, help="skip references with more sites (default 20)")
    csp.add_argument("--weights", type=Path, default=None, help="diffusion checkpoint (default: the shipped model)")
    csp.add_argument("--steps", type=_positive_int, default=50, help="diffusion sampling steps (default 50)")
    csp.add_argument("--sampler", choices=("ddim", "full"), default="ddim", help="diffusion sampler (default ddim)")
    csp.add_argument("--no-energy", action="store_true", help="skip CHGNet energy ranking (no energy-ranked @1)")
    csp.add_argument("--force", action="store_true", help="overwrite an existing --json summary")
    csp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


#: Largest count of one element per reduced formula unit accepted as a formula (larger is a typo).
MAX_FORMULA_AMOUNT = 1000


def _add_knowledge_options(command: argparse.ArgumentParser) -> None:
    """--forget and --novel-against: what counts as known, shared by every command that asks."""
    command.add_argument("--forget", type=Path, metavar="FILE", default=None,
                         help="text file of formulae to treat as unknown everywhere (novelty indexes, templates, "
                         "family tables, known members, substitution priors, hull): for rediscovery tests")
    command.add_argument("--novel-against", action="append", choices=("mp", "icsd"), default=None, metavar="INDEX",
                         help="count as known only formulae in INDEX (mp or icsd; repeat for both) and ask for new "
                         "ones; by default a formula in the Materials Project list is known whatever the request says")


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 1,2,4, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive multipliers like 1,2,4, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genms`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        forget = _read_forget(getattr(args, "forget", None))
    except GenMSError as err:
        print(f"genms: error: {err}", file=sys.stderr)
        return err.exit_code
    from genms_pmg.data.forget import forgetting

    with forgetting(forget):
        return _dispatch(parser, args)


def _read_forget(path: Path | None) -> list[str]:
    if path is None:
        return []
    from genms_pmg.data.forget import read_formula_file

    return read_formula_file(path, what="--forget")


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "plugins":
            return _cmd_plugins(args)
        if args.command == "parse":
            return _cmd_parse(args)
        if args.command == "propose":
            return _cmd_propose(args)
        if args.command == "known":
            return _cmd_known(args)
        if args.command == "train-diffusion":
            return _cmd_train_diffusion(args)
        if args.command == "benchmark":
            return _cmd_benchmark(args)
        if args.command == "csp-benchmark":
            return _cmd_csp_benchmark(args)
    except GenMSError as err:
        print(f"genms: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("genms: interrupted; rerun with --resume to continue from the saved search state", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"genms: internal error: {type(err).__name__}: {err} (rerun with --debug for details)".splitlines()[0], file=sys.stderr)
        return 1
    return 2


# -- generate ------------------------------------------------------------------------------
def _prepare_out(out: Path, *, force: bool, resume: bool) -> None:
    """Create ``out`` or check it may be written; refuse to mix with the user's files."""
    _make_out(out)
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out folder {out} is not writable; choose another folder or fix its permissions")
    existing = [p for p in out.iterdir() if p.name != CHECKPOINT_NAME]
    if existing and not force and not resume:
        raise UsageError(
            f"--out folder {out} already holds {len(existing)} file(s); pass --force to replace GenMS's own "
            "outputs there, --resume to continue a search, or choose an empty folder"
        )


def _remove_previous_outputs(out: Path) -> None:
    """Delete only the files an earlier GenMS run listed in its results.json: never the user's."""
    manifest = out / RESULTS_NAME
    if not manifest.exists():
        return
    try:
        listed = json.loads(manifest.read_text()).get("files", [])
    except (OSError, ValueError):
        return
    for name in listed:
        path = out / Path(name).name
        if path.is_file() and path.name.startswith(("rank-", "hull-")) and path.suffix in {".cif", ".png"}:
            path.unlink()


def _write_atomic(path: Path, text: str) -> None:
    from genms_pmg.data.cache import write_atomic

    write_atomic(path, text.encode())


def _cmd_generate(args: argparse.Namespace) -> int:
    if not args.request.strip():
        raise UsageError("the request is empty; describe the material, e.g. 'a stable spinel oxide containing Mg'")
    request = _parsed(args)  # fail fast on bad text, before any model loads or any folder is made
    _check_llm_options(args)
    if args.generators and len(set(args.generators)) != len(args.generators):
        raise UsageError(f"--generator names {', '.join(args.generators)}: each generator once, e.g. "
                         "--generator diffusion --generator templates")
    if args.out is not None:  # only an accepted request creates --out
        _prepare_out(args.out, force=args.force, resume=args.resume)
    _warn_ignored(request)
    if args.resume and (args.out is None or not (args.out / CHECKPOINT_NAME).exists()):
        print("genms: note: no saved search state" + (f" in {args.out}" if args.out else " (no --out)")
              + "; starting afresh", file=sys.stderr)
    from genms_pmg.generator import LanguageStructureGenerator

    generator = LanguageStructureGenerator(
        seed=args.seed, proposer=args.proposer, generators=args.generators, energy_model=args.energy_model,
        formulas=args.formulas, structures=args.structures, width=args.width, progress=not args.no_progress,
        llm_model=args.llm_model, llm_rank=args.llm_rank, relax=args.relax, relax_top=args.relax_top,
        max_e_hull=args.max_e_hull,
    )
    checkpoint = args.out / CHECKPOINT_NAME if args.out is not None else None
    if checkpoint is not None and not args.resume and checkpoint.exists():
        checkpoint.unlink()
    with _genms_warnings():
        result = generator.search(request, args.n, checkpoint=checkpoint)
    files: list[str] = []
    if args.out is not None:
        if args.force:
            _remove_previous_outputs(args.out)
        from genms_pmg.outputs import safe_name, write_cif, write_pictures

        for cand in result.candidates:
            name = f"rank-{cand.rank:02d}-{safe_name(cand.formula)}.cif"
            write_cif(cand.structure, args.out / name)
            files.append(name)
        files += write_pictures(result.candidates, args.out, generator._build_search().energy_model)
    payload = {
        "request": result.request.as_dict(),
        "config": result.config,
        "seed": args.seed,
        "files": files,
        "candidates": [c.as_dict() for c in result.candidates],
        "evaluated": result.evaluated(),
        "structures": result.tree["structures"],
        "timings_s": result.timings,
    }
    text = json.dumps(payload, default=str)
    if args.out is not None:
        _write_atomic(args.out / RESULTS_NAME, text)
        if checkpoint is not None and checkpoint.exists():
            checkpoint.unlink()
    if args.json:
        print(text)
    else:
        _print_table(result, out=args.out)
    return 0


def _print_table(result, *, out: Path | None) -> None:
    rows = [("rank", "formula", "space group", "atoms", "E_hull eV/atom", "E_form eV/atom", "relaxed", "novel",
             "decomposes to", "source")]
    for c in result.candidates:
        e = c.scores.get("e_form_per_atom")
        h = c.scores.get("e_above_hull")
        novel = c.scores.get("novel")
        decomposition = c.scores.get("decomposition") or {}
        rows.append((
            str(c.rank), c.formula, str(c.scores.get("space_group", "?")), str(len(c.structure)),
            f"{h:+.3f}" if isinstance(h, float) else "n/a", f"{e:.3f}" if isinstance(e, float) else "n/a",
            "yes" if c.scores.get("relaxed") else "no", {True: "yes", False: "no"}.get(novel, "?"),
            " + ".join(decomposition) or "n/a",
            _source_label(c.provenance),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    n_formulas = sum(1 for nd in result.tree["nodes"] if nd["kind"] == "formula")
    n_structures = sum(1 for nd in result.tree["nodes"] if nd["kind"] == "structure")
    print(f"\n{n_formulas} formulae and {n_structures} structures evaluated in {result.timings.get('total', 0):.1f} s"
          + (f"; CIFs and results.json in {out}" if out is not None else ""))


def _source_label(provenance: dict) -> str:
    info = provenance.get("generator_info", {})
    template = info.get("template_name") or info.get("template_id") or info.get("source")
    return f"{provenance.get('generator')}:{template}" if template else str(provenance.get("generator"))


# -- plugins / parse -----------------------------------------------------------------------
def _cmd_plugins(args: argparse.Namespace) -> int:
    from genms_pmg.plugins import check_all

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        infos = check_all()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=1))
        return 0
    group = None
    for info in infos:
        if info.group != group:
            group = info.group
            print(f"genms.{group}")
        line = f"  {info.name:<22} {info.state:<9} {info.value}  [{info.distribution}]"
        print(line + (f"\n      -> {info.error}" if info.error else ""))
    broken = [i for i in infos if i.state in ("broken", "duplicate")]
    if broken:
        print(f"\n{len(broken)} plugin(s) cannot be used; the search goes on without them.")
    return 0


def _read_avoid(path: Path | None) -> list[str]:
    """Reduced formulae from a --avoid file (one per line, '#' comments); one-line errors."""
    if path is None:
        return []
    from pymatgen.core import Composition, Element

    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise UsageError(f"cannot read --avoid {path}: {err.strerror}; give a text file with one formula per line") from None
    out = []
    for number, line in enumerate(lines, 1):
        token = line.split("#")[0].strip()
        if not token:
            continue
        try:
            comp = Composition(token)
            if not comp or not all(isinstance(el, Element) for el in comp.elements):
                raise ValueError(token)
            out.append(comp.reduced_formula)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            raise UsageError(f"--avoid {path} line {number}: {token!r} is not a formula; write one formula per line, e.g. CaTiO3") from None
    return out


def _parsed(args: argparse.Namespace):
    from genms_pmg.parsing import parse_request

    request = parse_request(args.request)
    request.avoid_formulas = list(dict.fromkeys([*request.avoid_formulas, *_read_avoid(getattr(args, "avoid", None))]))
    against = getattr(args, "novel_against", None)
    if against:
        request.novel, request.novel_against = True, list(dict.fromkeys(against))
        request.novelty_sources = list(request.novel_against)
    return request


@contextlib.contextmanager
def _genms_warnings():
    """GenMS's own warnings as one `genms: warning:` line each (never Python's file:line form);
    other libraries' warnings are silenced."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", GenMSWarning)
        try:
            yield
        finally:
            for warning in caught:
                print(f"genms: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)


def _warn_ignored(request) -> None:
    """The words no parsing rule used, in one line, so a user can see what was not understood."""
    if request.ignored:
        print(f"genms: warning: not understood and not used: {', '.join(request.ignored[:12])}"
              f"{' ...' if len(request.ignored) > 12 else ''} (see `genms parse`; rephrase if they matter)",
              file=sys.stderr)


def _cmd_parse(args: argparse.Namespace) -> int:
    request = _parsed(args)
    payload = {k: v for k, v in request.as_dict().items() if not k.startswith("@")}
    if args.cards:
        from genms_pmg.knowledge.retrieval import retrieve_cards

        payload["retrieved_cards"] = [{"family": r.card.key, "score": r.score, "how": r.how}
                                      for r in retrieve_cards(request, k=args.cards)]
    print(json.dumps(payload, indent=1))
    return 0


def _check_llm_options(args: argparse.Namespace) -> None:
    """--llm-model needs a use; a missing model or endpoint is a one-line error before any work."""
    if args.llm_model is not None and args.proposer != "llm" and not args.llm_rank:
        raise UsageError("--llm-model is used only with --proposer llm or --llm-rank; add one of them")
    if args.proposer == "llm" or args.llm_rank:
        from genms_pmg.formulas.llm import LLMSettings

        LLMSettings.from_env(model=args.llm_model)


def _cmd_propose(args: argparse.Namespace) -> int:
    from genms_pmg.formulas.ranking import propose_ranked
    from genms_pmg.generator import formula_stage

    request = _parsed(args)
    _warn_ignored(request)
    _check_llm_options(args)
    proposer, heuristics = formula_stage(proposer=args.proposer, llm_model=args.llm_model, llm_rank=args.llm_rank)
    with _genms_warnings():
        ranked = propose_ranked(request, proposers=[proposer], heuristics=heuristics, n=args.n, seed=args.seed)
    shown = ranked if args.all else [r for r in ranked if r.passed]
    if args.json:
        payload = {"request": {k: v for k, v in request.as_dict().items() if not k.startswith("@")},
                   "proposer": args.proposer, "seed": args.seed,
                   "formulas": [{"formula": r.formula, "passed": r.passed, "score": round(r.value, 4),
                                 "prior": r.proposal.get("prior"), "family": r.proposal.get("family"),
                                 "proposer": r.proposal.get("proposer"), "reasons": r.reasons,
                                 "checks": r.checks} for r in shown],
                   "rejected": sum(not r.passed for r in ranked)}
        print(json.dumps(payload, indent=1))
        return 0
    from genms_pmg.formulas.ranking import shortfall

    short = shortfall(request, ranked, args.n)
    if not shown:
        print(f"no formula passed every hard check ({len(ranked)} proposed); rerun with --all to see why")
        if short:
            print(f"genms: note: {short}", file=sys.stderr)
        return 0
    from genms_pmg.formulas.base import display_formula

    width = max(len(display_formula(r.formula)) for r in shown)
    for i, r in enumerate(shown, 1):
        mark = "" if r.passed else "  REJECTED"
        print(f"{i:3d}  {display_formula(r.formula):<{width}}  score {r.value:7.3f}{mark}")
        failed = [c for c in r.checks if not c["passed"]]
        for line in (r.proposal.get("reasons", [])[:2] + [f"{c['name']}: {c['reason']}" for c in failed]):
            print(f"     {'':<{width}}  - {line}")
    rejected = sum(not r.passed for r in ranked)
    if rejected and not args.all:
        print(f"({rejected} more proposed formula(e) failed a hard check; --all lists them)")
    if short:
        print(f"genms: note: {short}", file=sys.stderr)
    return 0


def _cmd_known(args: argparse.Namespace) -> int:
    from pymatgen.core import Composition, Element

    from genms_pmg.data.known import KnownFormulaIndex

    formulas = []
    for token in args.formula:
        try:
            comp = Composition(token)
            if not comp or not all(isinstance(el, Element) for el in comp.elements):
                raise ValueError(token)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            raise UsageError(f"{token!r} is not a chemical formula; write it like CaTiO3 or Ba2MgWO6") from None
        raw = comp.get_el_amt_dict().values()
        if not all(math.isfinite(a) and 0 < a <= 1e9 for a in raw):  # 'Na1797693135e299' reads as infinity
            raise UsageError(f"{token!r} has an amount no crystal can have; write it like CaTiO3 or Ba2MgWO6")
        amounts = comp.reduced_composition.get_el_amt_dict()
        if max(amounts.values()) > MAX_FORMULA_AMOUNT:
            raise UsageError(f"{token!r} has {max(amounts.values()):g} atoms of one element per formula unit; "
                             f"no crystal has more than {MAX_FORMULA_AMOUNT}; check the numbers")
        formulas.append(comp.reduced_formula)
    index = KnownFormulaIndex.default()
    names = {"mp": "Materials Project (matbench mp_e_form)", "icsd": "ICSD (OQMD-ICSD structures)"}
    mp, icsd = index.formulas(("mp",)), index.formulas(("icsd",))
    coverage = {"mp_formulas": len(mp), "icsd_formulas": len(icsd), "icsd_in_mp": len(icsd & mp),
                "note": "the ICSD index is the OQMD relaxations of a 32,163-structure ICSD subset, not all of "
                        "ICSD; a formula missing from it may still be known, so novelty checks also use the "
                        "Materials Project list unless --novel-against icsd is given"}
    rows = [{"formula": f, "known": bool(found := {s: ids for s, ids in index.sources_of(f).items() if ids}),
             "sources": found} for f in formulas]
    if args.json:
        print(json.dumps({"formulas": rows, "indexes": coverage}, indent=1))
        return 0
    print(f"indexes: Materials Project list {len(mp):,} formulae; ICSD subset (OQMD-ICSD) {len(icsd):,} formulae, "
          f"{len(icsd & mp):,} of them also in the MP list; the ICSD subset is partial, so a formula it lacks "
          "may still be known")
    for row in rows:
        if not row["known"]:
            print(f"{row['formula']}: in neither index (Materials Project list, ICSD subset)")
            continue
        where = "; ".join(f"{names.get(s, s)}: {', '.join(map(str, ids[:5]))}{' ...' if len(ids) > 5 else ''}"
                          f" ({len(ids)} entr{'y' if len(ids) == 1 else 'ies'})" for s, ids in row["sources"].items())
        print(f"{row['formula']}: known in {where}")
    return 0


# -- train-diffusion ------------------------------------------------------------------------
def _check_csv(path: Path, flag: str) -> None:
    if not path.is_file():
        raise UsageError(f"{flag} {path} does not exist; give a CSV(.gz) file with a 'cif' column")


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
    network_config = {"width": args.width, "mults": tuple(args.mults), "blocks_per_level": args.blocks_per_level,
                      "dropout": args.dropout, "pair_dim": args.pair_dim}
    if resuming:
        saved = torch.load(args.out / CHECKPOINT, map_location="cpu", weights_only=False)["config"]
        saved_network = {"pair_dim": 0, **saved["network"], "mults": tuple(saved["network"]["mults"])}
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
    trainer = DiffusionTrainer(
        diffusion, train, out_dir=args.out, val=val, max_atoms=args.max_atoms, batch_size=args.batch_size,
        lr=args.lr, ema_decay=args.ema, save_every=args.save_every, val_every=args.val_every,
        keep_every=args.keep_every, total_steps=args.steps, seed=args.seed, device=args.device,
        progress=not args.no_progress,
    )
    n_params = sum(p.numel() for p in network.parameters())
    print(f"{'resuming at step ' + str(trainer.step) if resuming else 'starting'}: {len(train)} training structures"
          f"{f', {len(val)} validation' if val else ''}, {n_params / 1e6:.2f}M parameters, {args.steps} steps",
          file=sys.stderr)
    step = trainer.train(args.steps)
    print(f"trained to step {step}; checkpoint {args.out / CHECKPOINT}, log {args.out / 'log.jsonl'}", file=sys.stderr)
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
    from genms_pmg.evaluation.csp import (
        format_table,
        load_benchmark_rows,
        plot_summary,
        run_csp_benchmark,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = load_benchmark_rows(args.csv, limit=args.limit, max_atoms=args.max_atoms)
    if not rows:
        raise UsageError(f"{args.csv} has no structures with at most {args.max_atoms} sites")
    energy_model = None
    if not args.no_energy:
        from genms_pmg.plugins import create

        energy_model = create("energy_models", "chgnet")
    records_path = args.json.with_suffix(".records.jsonl") if args.json is not None else None
    summary, records = run_csp_benchmark(
        rows, generators, k=args.samples, seed=args.seed, records_path=records_path, energy_model=energy_model,
        diffusion_weights=args.weights, diffusion_steps=args.steps, diffusion_sampler=args.sampler,
        progress=not args.no_progress,
    )
    settings = {"csv": str(args.csv), "rows": len(rows), "samples": args.samples, "generators": generators,
                "seed": args.seed, "max_atoms": args.max_atoms, "diffusion_steps": args.steps,
                "diffusion_sampler": args.sampler, "weights": str(args.weights) if args.weights else "shipped",
                "energy_ranking": energy_model is not None}
    print(format_table(summary))
    if args.json is not None:
        _write_atomic(args.json, json.dumps({"settings": settings, "summary": summary, "records": records}))
        plot_summary(summary, args.json.with_suffix(".png"))
        print(f"\nsummary and records in {args.json}, plot in {args.json.with_suffix('.png')}")
    return 0


def _make_out(out: Path) -> None:
    """Create the --out folder, or say in one line why it cannot be."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create --out folder {out}: {err.strerror}; choose a writable path") from None


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
    from genms_pmg.evaluation.families import _read_records
    from genms_pmg.evaluation.sun_report import plot_all, to_markdown

    rankings = ("before", "after") if args.ranking == "both" else (args.ranking,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_sun_benchmark(families, out=args.out, judge=args.judge, rankings=rankings, samples=args.samples,
                                    seed=args.seed, formulas=args.formulas, width=args.width,
                                    relax_top=args.relax_top, calibration=tuple(args.calibration), progress=not args.no_progress)
        records = _read_records(args.out / "records.jsonl")
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
    from genms_pmg.evaluation.families import _read_records, run_families_benchmark
    from genms_pmg.evaluation.families_report import plot_all, to_markdown

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_families_benchmark(
            families, out=args.out, samples=args.samples, seed=args.seed, formulas=args.formulas,
            structures=args.structures, width=args.width, relax_top=args.relax_top, generators=args.generators,
            progress=not args.no_progress)
        records = [r for r in _read_records(args.out / "records.jsonl") if r["family"] in families]
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
