"""`genms generate`: the whole search, CIFs, pictures and results.json written atomically."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from genms_pmg.cli.common import (
    CHECKPOINT_NAME,
    RESULTS_NAME,
    _check_llm_options,
    _genms_warnings,
    _make_out,
    _parsed,
    _warn_ignored,
    _write_atomic,
)
from genms_pmg.errors import UsageError


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
        sheet = c.scores.get("sheet_energy_vs_parent")
        rows.append((
            str(c.rank), c.formula, str(c.scores.get("space_group", "?")), str(len(c.structure)),
            f"{h:+.3f}" if isinstance(h, float) else (f"{sheet:+.3f}*" if isinstance(sheet, float) else "n/a"), f"{e:.3f}" if isinstance(e, float) else "n/a",
            "yes" if c.scores.get("relaxed") else "no", {True: "yes", False: "no"}.get(novel, "?"),
            " + ".join(decomposition) or "n/a",
            _source_label(c.provenance),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if any("sheet_energy_vs_parent" in c.scores for c in result.candidates):
        print("\n* two-dimensional sheet: energy (eV/atom) against its parent MAX phase minus the A element, "
              "not above a bulk hull")
    n_formulas = sum(1 for nd in result.tree["nodes"] if nd["kind"] == "formula")
    n_structures = sum(1 for nd in result.tree["nodes"] if nd["kind"] == "structure")
    print(f"\n{n_formulas} formulae and {n_structures} structures evaluated in {result.timings.get('total', 0):.1f} s"
          + (f"; CIFs and results.json in {out}" if out is not None else ""))


def _source_label(provenance: dict) -> str:
    info = provenance.get("generator_info", {})
    template = info.get("template_name") or info.get("template_id") or info.get("source")
    return f"{provenance.get('generator')}:{template}" if template else str(provenance.get("generator"))
