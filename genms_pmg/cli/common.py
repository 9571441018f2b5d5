"""Pieces every `genms` command shares: one-line argparse errors, number types, --out folders,
GenMS warnings as one line, --avoid / --forget files, the parsed request."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from genms_pmg.errors import GenMSWarning, UsageError

RESULTS_NAME = "results.json"


CHECKPOINT_NAME = ".genms-search-state.json"


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


def _read_forget(path: Path | None) -> list[str]:
    if path is None:
        return []
    from genms_pmg.data.forget import read_formula_file

    return read_formula_file(path, what="--forget")


def _write_atomic(path: Path, text: str) -> None:
    from genms_pmg.data.cache import write_atomic

    write_atomic(path, text.encode())


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


def _read_like(path):
    """The --like crystal as a pymatgen Structure, or None; one-line errors for a missing or unreadable file."""
    if path is None:
        return None
    from pymatgen.core import Structure

    if not path.is_file():
        raise UsageError(f"--like {path}: no such file; give a CIF (or POSCAR) of the crystal whose type you want")
    try:
        return Structure.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many kinds on bad files: one clear line instead
        raise UsageError(f"--like {path}: not a crystal structure pymatgen can read "
                         f"({type(exc).__name__}); give a CIF or POSCAR file") from None


def _parsed(args: argparse.Namespace):
    from genms_pmg.parsing import parse_request

    request = parse_request(args.request, like=_read_like(getattr(args, "like", None)))
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


def _check_llm_options(args: argparse.Namespace) -> None:
    """--llm-model needs a use; a missing model or endpoint is a one-line error before any work."""
    if args.llm_model is not None and args.proposer != "llm" and not args.llm_rank:
        raise UsageError("--llm-model is used only with --proposer llm or --llm-rank; add one of them")
    if args.proposer == "llm" or args.llm_rank:
        from genms_pmg.formulas.llm import LLMSettings

        LLMSettings.from_env(model=args.llm_model)


# -- train-diffusion ------------------------------------------------------------------------
def _check_csv(path: Path, flag: str) -> None:
    if not path.is_file():
        raise UsageError(f"{flag} {path} does not exist; give a CSV(.gz) file with a 'cif' column")


def _make_out(out: Path) -> None:
    """Create the --out folder, or say in one line why it cannot be."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create --out folder {out}: {err.strerror}; choose a writable path") from None
