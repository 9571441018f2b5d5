"""`genms parse`, `propose`, `known` and `plugins`: the formula level, without structures."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings

from genms_pmg.cli.common import (
    MAX_FORMULA_AMOUNT,
    _check_llm_options,
    _genms_warnings,
    _parsed,
    _warn_ignored,
)
from genms_pmg.errors import UsageError


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
    request = _parsed(args)
    payload = {k: v for k, v in request.as_dict().items() if not k.startswith("@")}
    if args.cards:
        from genms_pmg.knowledge.retrieval import retrieve_cards

        payload["retrieved_cards"] = [{"family": r.card.key, "score": r.score, "how": r.how}
                                      for r in retrieve_cards(request, k=args.cards)]
    print(json.dumps(payload, indent=1))
    return 0


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
        if not all(math.isfinite(a) and 0 < a < 1e15 for a in raw):  # "Na1797693135e299" overflows pymatgen
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
