"""Structure-type requests (issue 20): understood / known member proposed / returned structures compliant.

    OMP_NUM_THREADS=1 python benchmarks/structure_types.py --out benchmarks/results/DATE/issue20/structure_types
        [--generate] [--split blind] [--limit N]

Writes OUT.json (summary + per-request records) and OUT.md. Requests come from
tests/data/structure_type_requests.json (written blind to the names table; the blind split is never tuned on).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from genms_pmg.evaluation.structure_types import evaluate_request, load_requests, records_as_dicts, summarize

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=Path, default=ROOT / "tests" / "data" / "structure_type_requests.json")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", choices=["tune", "blind", "all"], default="all")
    ap.add_argument("--generate", action="store_true", help="also run the search (about 30-60 s a request)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--formulas", type=int, default=10, help="H of the search (default 10)")
    ap.add_argument("--width", type=int, default=5, help="W of the search (default 5)")
    args = ap.parse_args(argv)
    items = [it for it in load_requests(args.requests) if args.split == "all" or it["split"] == args.split]
    items = items[:args.limit] if args.limit else items
    generator = None
    if args.generate:
        from genms_pmg import LanguageStructureGenerator

        generator = LanguageStructureGenerator(seed=0, formulas=args.formulas, width=args.width, progress=False)
    records = []
    done: dict[str, dict] = {}
    partial = args.out.with_suffix(".records.jsonl")
    if partial.is_file():  # resume: requests already judged with these settings are kept
        for line in partial.read_text().splitlines():
            r = json.loads(line)
            done[r["text"]] = r
    from genms_pmg.evaluation.structure_types import TypeRequestRecord

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("a") as fh:
        for item in tqdm(items, desc="requests", file=sys.stderr):
            if item["text"] in done and (not args.generate or done[item["text"]]["compliant"] is not None
                                         or not done[item["text"]]["understood"]):
                records.append(TypeRequestRecord(**done[item["text"]]))
                continue
            rec = evaluate_request(item, top=args.top, generate=args.generate, n=args.n, generator=generator)
            records.append(rec)
            fh.write(json.dumps(records_as_dicts([rec])[0]) + "\n")
            fh.flush()
    summary = summarize(records)
    args.out.with_suffix(".json").write_text(json.dumps({"summary": summary, "records": records_as_dicts(records)},
                                                        indent=1))
    lines = ["# Structure-type requests (issue 20)", "", f"Request set: `{args.requests.relative_to(ROOT)}`; "
             f"proposals: top {args.top}; generate: {args.generate} (n={args.n}, H={args.formulas}, W={args.width}).", "",
             "| split | requests | understood | refused | member in proposals | generated | compliant | member returned |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = (lambda v: "–" if v is None else f"{100 * v:.1f}%")
    for split, s in summary.items():
        lines.append(f"| {split} | {s['requests']} | {fmt(s['understood'])} | {s['refused']} | "
                     f"{fmt(s['member_proposed@top'])} | {s['generated']} | {fmt(s['compliant'])} | "
                     f"{fmt(s['member_returned'])} |")
    lines += ["", "## Requests not understood", "", "| split | request | family | why |", "|---|---|---|---|"]
    for r in records:
        if not r.understood:
            why = (r.refused or r.why_not).replace("|", "/")
            lines.append(f"| {r.split} | {r.text} | {r.family or '–'} | {why} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:10]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
