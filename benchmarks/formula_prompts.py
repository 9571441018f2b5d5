"""Issue-4 targets on the prompt set: hard-constraint satisfaction and novelty of proposed formulae.

    python benchmarks/formula_prompts.py --n 20 --out benchmarks/results/formula_prompts

For every prompt of tests/data/formula_prompts.json it runs `genms propose` (pi_hi then R_hi, the
formulae that pass every hard check, as a user sees them) and, separately, the proposer's raw output
before R_hi; each formula is checked against the prompt's written-down constraints with
genms_pmg.evaluation.prompt_constraints (independent of the R_hi code). Novelty is measured on the
prompts that ask for it, against the known-formula index.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from genms_pmg import plugins
from genms_pmg.data.known import KnownFormulaIndex
from genms_pmg.evaluation.prompt_constraints import violations
from genms_pmg.errors import UsageError
from genms_pmg.formulas.ranking import propose_ranked, shortfall
from genms_pmg.parsing import parse_request

PROMPTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "formula_prompts.json"


def run(*, n: int, seed: int, proposer_name: str = "offline", proposer_options: dict | None = None,
        prompts: Path = PROMPTS) -> dict:
    specs = json.loads(Path(prompts).read_text())["prompts"]
    proposer = plugins.create("proposers", proposer_name, **(proposer_options or {}))
    heuristics = list(plugins.create_all("formula_heuristics").values())
    index = KnownFormulaIndex.default()
    rows = []
    for spec in specs:
        t0 = time.perf_counter()
        try:
            request = parse_request(spec["prompt"])
        except UsageError as err:  # a one-line refusal: counted apart, never as a pass
            rows.append({"prompt": spec["prompt"], "category": spec.get("category"), "seconds": 0.0,
                         "refused": str(err), "raw": {"formulas": [], "violations": {}},
                         "ranked": {"formulas": [], "violations": {}}})
            continue
        raw = proposer.propose(request, n=n, seed=seed)
        everything = propose_ranked(request, proposers=[proposer], heuristics=heuristics, n=n, seed=seed)
        ranked = [r for r in everything if r.passed]
        seconds = time.perf_counter() - t0
        row = {"prompt": spec["prompt"], "category": spec.get("category"), "seconds": round(seconds, 3),
               "ignored": request.ignored, "reason": shortfall(request, everything, n)}
        for label, formulas in (("raw", [p.formula for p in raw]), ("ranked", [r.formula for r in ranked])):
            bad = {f: v for f in formulas if (v := violations(f, spec))}
            row[label] = {"formulas": formulas, "violations": bad}
            if spec.get("novel"):
                row[label]["known"] = [f for f in formulas if index.is_known(f, sources=spec["novel"])]
        rows.append(row)
    summary = {}
    for label in ("raw", "ranked"):
        total = sum(len(r[label]["formulas"]) for r in rows)
        ok = total - sum(len(r[label]["violations"]) for r in rows)
        novel_rows = [r for r in rows if "known" in r[label]]
        novel_total = sum(len(r[label]["formulas"]) for r in novel_rows)
        novel_ok = novel_total - sum(len(r[label]["known"]) for r in novel_rows)
        summary[label] = {"formulas": total, "satisfy_all_hard": ok, "hard_rate": ok / max(total, 1),
                          "novel_prompts": len(novel_rows), "novel_formulas": novel_total,
                          "novel": novel_ok, "novelty_rate": novel_ok / max(novel_total, 1),
                          "empty_prompts": [r["prompt"] for r in rows if not r[label]["formulas"]],
                          "refused_prompts": [r["prompt"] for r in rows if r.get("refused")],
                          "prompts_with_violations": sum(1 for r in rows if r[label]["violations"])}
    return {"n": n, "seed": seed, "proposer": proposer_name, "prompts": len(rows), "summary": summary,
            "seconds_per_prompt": sum(r["seconds"] for r in rows) / len(rows), "rows": rows}


def to_markdown(result: dict, command: str) -> str:
    lines = [f"# Formula proposals on {result.get('prompt_file', 'the prompt set')} ({result['prompts']} prompts)", "",
             f"Command: `{command}`", "",
             f"Proposer `{result['proposer']}`, n = {result['n']} formulae per prompt, seed {result['seed']}; "
             f"{result['seconds_per_prompt']:.2f} s per prompt (raw proposal plus `genms propose`).", "",
             "| stage | formulae | satisfy every hard constraint | novelty prompts | novel formulae |",
             "|---|---|---|---|---|"]
    for label, name in (("raw", "proposer output (pi_hi)"), ("ranked", "after R_hi (`genms propose`)")):
        s = result["summary"][label]
        lines.append(f"| {name} | {s['formulas']} | {s['satisfy_all_hard']} ({100 * s['hard_rate']:.1f}%) | "
                     f"{s['novel_prompts']} | {s['novel']}/{s['novel_formulas']} ({100 * s['novelty_rate']:.1f}%) |")
    lines += ["", "Hard constraints: required and excluded elements (including the toxic / scarce lists), anion "
              "class, family ratio (sites may share an element), atoms per formula unit, avoided formulae, SMACT "
              "charge neutrality (alloys allowed for intermetallic prompts). Novelty: absent from the sources the "
              "prompt names (Materials Project: matbench mp_e_form formulae; ICSD: OQMD-ICSD structures).", "",
              "## Violations", ""]
    for row in result["rows"]:
        for label in ("raw", "ranked"):
            for f, v in row[label]["violations"].items():
                lines.append(f"- {label}: `{row['prompt']}` -> {f}: {'; '.join(v)}")
            for f in row[label].get("known", []):
                lines.append(f"- {label}: `{row['prompt']}` -> {f}: already known")
    empty = result["summary"]["ranked"]["empty_prompts"]
    if empty:
        lines += ["", "## Prompts with no passing formula", ""]
        for row in result["rows"]:
            if not row["ranked"]["formulas"]:
                why = row.get("refused") or row.get("reason") or "no reason given"
                lines.append(f"- `{row['prompt']}`: {'refused: ' if row.get('refused') else ''}{why}")
    ignored = [(r["prompt"], r["ignored"]) for r in result["rows"] if r.get("ignored")]
    if ignored:
        lines += ["", "## Words the parser did not use (`ignored`)", ""]
        lines += [f"- `{p}`: {', '.join(words)}" for p, words in ignored]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/formula_prompts"))
    ap.add_argument("--prompts", type=Path, default=PROMPTS,
                    help="prompt file (default: the tuning set; tests/data/formula_prompts_heldout.json is held out)")
    args = ap.parse_args()
    result = run(n=args.n, seed=args.seed, prompts=args.prompts)
    result["prompt_file"] = str(args.prompts.relative_to(PROMPTS.parents[2]) if args.prompts.is_absolute() else args.prompts)
    command = (f"python benchmarks/formula_prompts.py --n {args.n} --seed {args.seed} --prompts {result['prompt_file']} "
               f"--out {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(to_markdown(result, command))
    print(to_markdown(result, command).split("## Violations")[0])


if __name__ == "__main__":
    main()
