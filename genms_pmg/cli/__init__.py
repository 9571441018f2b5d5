"""The ``genms`` command: generate structures from a sentence, list plugins, inspect requests.

Errors GenMS raises on purpose print one line (``genms: error: ...``) and exit with their code
(2 for usage errors); nothing is written half-way: every output file is replaced atomically and an
output folder that already holds files is refused unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from genms_pmg.cli.common import CHECKPOINT_NAME, RESULTS_NAME, _read_forget
from genms_pmg.cli.formulas import _cmd_known, _cmd_parse, _cmd_plugins, _cmd_propose
from genms_pmg.cli.generate import _cmd_generate
from genms_pmg.cli.models import (
    _cmd_benchmark,
    _cmd_csp_benchmark,
    _cmd_train_diffusion,
)
from genms_pmg.cli.parser import build_parser
from genms_pmg.errors import GenMSError

__all__ = ["CHECKPOINT_NAME", "RESULTS_NAME", "build_parser", "main"]


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
        if args.command == "campaign":
            from genms_pmg.cli.campaign import cmd_campaign

            return cmd_campaign(args)
        if args.command == "types":
            from genms_pmg.cli.types import cmd_types

            return cmd_types(args)
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
