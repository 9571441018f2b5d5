"""The ``genms`` command: generate structures from a sentence, list plugins, inspect requests.

Errors GenMS raises on purpose print one line (``genms: error: ...``) and exit with their code
(2 for usage errors); nothing is written half-way: every output file is replaced atomically and an
output folder that already holds files is refused unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from genms_pmg.errors import GenMSError, UsageError

RESULTS_NAME = "results.json"
CHECKPOINT_NAME = ".genms-search-state.json"

EXAMPLES = """examples:
  genms generate "a stable spinel oxide containing Mg" -n 3 --out results/ --seed 0
  genms generate "a cubic perovskite fluoride" --formulas 20 --structures 8 --width 6 --json
  genms parse "a lead-free halide double perovskite"
  genms plugins
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line that says what to do (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"genms: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


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
    gen.add_argument("--proposer", default="offline", help="formula proposer plugin (default offline)")
    gen.add_argument("--generator", action="append", dest="generators", metavar="NAME",
                     help="structure generator plugin; repeat for several (default: templates)")
    gen.add_argument("--energy-model", default="chgnet", help="energy model plugin (default chgnet)")
    gen.add_argument("--force", action="store_true", help="write into an --out folder that already holds files "
                     "(GenMS's own earlier outputs there are replaced; other files are left alone)")
    gen.add_argument("--resume", action="store_true", help="continue an interrupted search saved in --out")
    gen.add_argument("--json", action="store_true", help="print machine-readable results to stdout instead of the table")
    gen.add_argument("--no-progress", action="store_true", help="hide progress bars")

    plug = sub.add_parser("plugins", help="list installed plugins and whether they load",
                          description="List every plugin of every genms.* entry-point group with its state; "
                          "broken plugins are shown with their cause.")
    plug.add_argument("--json", action="store_true", help="machine-readable output")

    parse = sub.add_parser("parse", help="show how a request is understood",
                           description="Print the parsed Request as JSON, including the words that were ignored.")
    parse.add_argument("request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genms`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "plugins":
            return _cmd_plugins(args)
        if args.command == "parse":
            return _cmd_parse(args)
    except GenMSError as err:
        print(f"genms: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("genms: interrupted; rerun with --resume to continue from the saved search state", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI must never end in a bare traceback
        if args.debug:
            raise
        print(f"genms: internal error: {type(err).__name__}: {err} (rerun with --debug for details)".splitlines()[0], file=sys.stderr)
        return 1
    return 2


# -- generate ------------------------------------------------------------------------------
def _prepare_out(out: Path, *, force: bool, resume: bool) -> None:
    """Create ``out`` or check it may be written; refuse to mix with the user's files."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create --out folder {out}: {err.strerror}; choose a writable path") from None
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
        if path.is_file() and path.name.startswith("rank-") and path.suffix == ".cif":
            path.unlink()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _safe_name(formula: str) -> str:
    return "".join(ch for ch in formula if ch.isalnum()) or "structure"


def _cmd_generate(args: argparse.Namespace) -> int:
    if not args.request.strip():
        raise UsageError("the request is empty; describe the material, e.g. 'a stable spinel oxide containing Mg'")
    if args.out is not None:
        _prepare_out(args.out, force=args.force, resume=args.resume)
    from genms_pmg.request import parse_request

    request = parse_request(args.request)  # fail fast on bad text, before any model loads
    from genms_pmg.generator import LanguageStructureGenerator

    generator = LanguageStructureGenerator(
        seed=args.seed, proposer=args.proposer, generators=args.generators, energy_model=args.energy_model,
        formulas=args.formulas, structures=args.structures, width=args.width, progress=not args.no_progress,
    )
    checkpoint = args.out / CHECKPOINT_NAME if args.out is not None else None
    if checkpoint is not None and not args.resume and checkpoint.exists():
        checkpoint.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = generator.search(request, args.n, checkpoint=checkpoint)
    files: list[str] = []
    if args.out is not None:
        if args.force:
            _remove_previous_outputs(args.out)
        for cand in result.candidates:
            name = f"rank-{cand.rank:02d}-{_safe_name(cand.formula)}.cif"
            _write_atomic(args.out / name, cand.structure.to(fmt="cif"))
            files.append(name)
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
    rows = [("rank", "formula", "space group", "atoms", "E_form eV/atom", "novel", "source")]
    for c in result.candidates:
        e = c.scores.get("e_form_per_atom")
        novel = c.scores.get("novel")
        rows.append((
            str(c.rank), c.formula, str(c.scores.get("space_group", "?")), str(len(c.structure)),
            f"{e:.3f}" if isinstance(e, float) else "n/a", {True: "yes", False: "no"}.get(novel, "?"),
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


def _cmd_parse(args: argparse.Namespace) -> int:
    from genms_pmg.request import parse_request

    request = parse_request(args.request)
    print(json.dumps({k: v for k, v in request.as_dict().items() if not k.startswith("@")}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
