"""Bad and odd inputs through the CLI, as a new user would try them: exit code and what was printed.

    python benchmarks/bad_inputs.py --out benchmarks/results/2026-12-02/bad_inputs

Each case runs `genms ...` in a fresh process (offline, small settings) in a scratch folder. A good
outcome is either a clean answer (exit 0) or one `genms: error:` line with exit code 2; never a
traceback, an internal error, or a folder left behind by a rejected command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL = ["--formulas", "3", "--structures", "2", "--width", "2", "--no-progress", "--generator", "templates"]
CASES: list[tuple[str, list[str]]] = [
    ("empty request", ["generate", "   "]),
    ("small talk", ["generate", "hello there, how are you"]),
    ("unknown element", ["generate", "a perovskite containing Xx"]),
    ("mis-capitalised symbol", ["generate", "a spinel with mg"]),
    ("noble gas in a family", ["generate", "a spinel containing only neon"]),
    ("superheavy element", ["generate", "a spinel containing Og"]),
    ("required and excluded", ["generate", "a perovskite with Ba and without Ba"]),
    ("two families", ["generate", "a spinel perovskite"]),
    ("impossible ratio", ["generate", "a perovskite with atom ratio 1:2"]),
    ("too few atoms", ["generate", "a garnet with at most 4 atoms"]),
    ("space group 300", ["generate", "a cubic oxide in space group 300"]),
    ("space group vs system", ["generate", "an oxide in space group 62 that is monoclinic"]),
    ("metal and insulator", ["generate", "a metallic insulator"]),
    ("intermetallic oxide", ["generate", "a Heusler oxide"]),
    ("-n 0", ["generate", "a spinel oxide", "-n", "0"]),
    ("-n text", ["generate", "a spinel oxide", "-n", "three"]),
    ("negative width", ["generate", "a spinel oxide", "--width", "-1"]),
    ("NaN e_hull", ["generate", "a spinel oxide", "--max-e-hull", "nan"]),
    ("unknown generator", ["generate", "a spinel oxide", "--generator", "nope"]),
    ("same generator twice", ["generate", "a spinel oxide", "--generator", "templates", "--generator", "templates"]),
    ("unknown energy model", ["generate", "a spinel oxide", "--energy-model", "nope"]),
    ("--out is a file", ["generate", "a spinel oxide", "--out", "{scratch}/a-file/sub"]),
    ("--out holds files", ["generate", "a spinel oxide", "--out", "{scratch}/full"]),
    ("rejected request, new --out", ["generate", "hello there", "--out", "{scratch}/never-made"]),
    ("damaged --resume state", ["generate", "a spinel oxide", "--out", "{scratch}/damaged", "--resume"]),
    ("--resume without state", ["generate", "a rocksalt oxide", "-n", "1", "--out", "{scratch}/fresh", "--resume", *SMALL]),
    ("-n more than found", ["generate", "a fluorite oxide with cerium", "-n", "5", *SMALL]),
    ("--llm-model without LLM", ["generate", "a spinel oxide", "--llm-model", "m"]),
    ("LLM endpoint down", ["propose", "a spinel oxide", "--proposer", "llm", "--llm-model", "m", "-n", "3"]),
    ("avoid file missing", ["propose", "a spinel oxide", "--avoid", "{scratch}/none.txt"]),
    ("avoid file bad line", ["propose", "a spinel oxide", "--avoid", "{scratch}/bad.txt"]),
    ("forget file bad line", ["propose", "a spinel oxide", "--forget", "{scratch}/bad.txt"]),
    ("novel-against bogus", ["propose", "a new spinel", "--novel-against", "oqmd"]),
    ("propose, few possible", ["propose", "a fluorite-type oxide with cerium"]),
    ("known: not a formula", ["known", "Qq2O"]),
    ("known: absurd count", ["known", "Na1000000000000Cl"]),
    ("known: overflowing count", ["known", "Na1797693135e299"]),
    ("known: fractional", ["known", "Fe0.5O0.5"]),
    ("parse: chatty", ["parse", "hi! I'd love a lithium-containing spinel for my battery, thanks"]),
    ("parse: only words", ["parse", "something nice and shiny"]),
    ("unknown command", ["make", "a spinel"]),
    ("benchmark without --out", ["benchmark", "rediscovery"]),
    ("csp-benchmark missing file", ["csp-benchmark", "{scratch}/none.csv"]),
    ("train without data", ["train-diffusion", "--train", "{scratch}/none.csv", "--val", "{scratch}/none.csv", "--out", "{scratch}/t"]),
]


def run_case(args: list[str], scratch: Path) -> dict:
    argv = [a.format(scratch=scratch) for a in args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "genms_pmg.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=900, cwd=scratch)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("genms: error:")]
    outcome = ("answer" if proc.returncode == 0 else
               "one-line usage error" if proc.returncode == 2 and len(errors) == 1 and lines[-1] == errors[0] else "BAD")
    if "Traceback" in proc.stderr or "internal error" in proc.stderr:
        outcome = "BAD"
    return {"argv": argv, "rc": proc.returncode, "outcome": outcome, "seconds": round(time.perf_counter() - t0, 1),
            "said": (errors or [ln for ln in lines if ln.startswith("genms:")] or proc.stdout.splitlines()[:1] or [""])[0][:240]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "a-file").write_text("x")
        (scratch / "full").mkdir()
        (scratch / "full" / "notes.txt").write_text("mine")
        (scratch / "damaged").mkdir()
        (scratch / "damaged" / ".genms-search-state.json").write_text("[1, 2, 3]")
        (scratch / "bad.txt").write_text("CaTiO3\nnot a formula\n")
        for name, case in CASES:
            row = {"case": name, **run_case(case, scratch)}
            if name == "rejected request, new --out":
                row["folder_left"] = (scratch / "never-made").exists()
                if row["folder_left"]:
                    row["outcome"] = "BAD"
            rows.append(row)
            print(f"{row['outcome']:<22} rc={row['rc']} {name}: {row['said'][:110]}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("answer", "one-line usage error", "BAD")}
    md = [f"# Bad and odd inputs through the CLI ({len(rows)} cases)", "",
          f"Command: `python benchmarks/bad_inputs.py --out {args.out}`", "",
          f"Outcomes: {counts['answer']} answered, {counts['one-line usage error']} one-line usage errors (exit 2), "
          f"{counts['BAD']} bad (traceback, internal error, several lines or a folder left behind).", "",
          "| case | command | exit | outcome | what genms said |", "|---|---|---|---|---|"]
    for r in rows:
        cmd = " ".join(r["argv"]).replace("|", "\\|")
        md.append(f"| {r['case']} | `genms {cmd[:90]}` | {r['rc']} | {r['outcome']} | {r['said'].replace('|', '/')[:160]} |")
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
