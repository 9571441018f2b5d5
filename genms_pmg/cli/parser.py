"""The `genms` argument parser: every command and option, with help that says what to do."""

from __future__ import annotations

import argparse
from pathlib import Path

from genms_pmg.cli.common import (
    _add_knowledge_options,
    _int_tuple,
    _nonnegative_float,
    _nonnegative_int,
    _Parser,
    _positive_float,
    _positive_int,
)

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


def _add_like_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--like", type=Path, metavar="FILE", help="a CIF or POSCAR whose structure type the answers "
                        "take (matched to a prototype of the bundled data by space group and Wyckoff sites)")


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
                     help="structures of each expanded formula and generator relaxed after the energy screen (default 1)")
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
    _add_like_option(gen)
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
    _add_like_option(parse)
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
    _add_like_option(prop)
    _add_knowledge_options(prop)

    from genms_pmg.cli import types as _types

    _types.add_arguments(sub.add_parser(
        "types", help="list the structure-type names GenMS reads, or show what one resolves to",
        description="Structure-type names (minerals, Strukturbericht symbols, nicknames, archetypes) and the "
        "prototype of the bundled OQMD-ICSD data each resolves to; with a name, the derived card."))

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
    train.add_argument("--space-groups", action="store_true",
                       help="condition on the space group (classifier-free guidance; 230 classes plus 'none')")
    train.add_argument("--p-uncond", type=float, default=0.1,
                       help="share of rows trained without their space group (default 0.1)")
    train.add_argument("--bucket-width", type=int, default=4,
                       help="batch cells of similar atom count, in buckets this wide, and drop unused padding (default 4; 0 off)")
    train.add_argument("--export", type=Path, default=None, metavar="PT",
                       help="after training, write the sampling-only weights (EMA, config, statistics) here, "
                       "e.g. genms_pmg/structures/diffusion/weights/model.pt")
    train.add_argument("--init-from", type=Path, default=None, metavar="PT",
                       help="start a new run from this checkpoint's weights, e.g. the shipped model.pt")
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
                     help="structures relaxed per expanded formula and generator by the 'after' search (default 2)")
    sun.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sun.add_argument("--formulas", metavar="H", type=_positive_int, default=20, help="formulae proposed, H (default 20)")
    sun.add_argument("--width", metavar="W", type=_positive_int, default=10, help="formulae expanded, W (default 10)")
    sun.add_argument("--calibration", nargs=2, type=_nonnegative_int, default=(40, 20), metavar=("ON", "ABOVE"),
                     help="known compounds on the OQMD hull and 0.1-0.3 eV/atom above it to calibrate on (default 40 20)")
    sun.add_argument("--no-progress", action="store_true", help="hide progress bars")

    from genms_pmg.cli.campaign import add_campaign_parser

    add_campaign_parser(sub)
    csp = sub.add_parser(
        "csp-benchmark", help="crystal structure prediction benchmark of the structure generators",
        description="For each row of CSV (a 'cif' column), generate --samples structures for its exact cell "
        "composition with each generator and report validity, match rate @1 (first and energy-ranked) and "
        "@K with StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10), RMSE and seconds per structure. "
        "Templates leave out every reference whose formula is in the benchmark set. Generators: diffusion "
        "(the model alone; a conditional model draws space groups from the training split's groups for the "
        "stoichiometry type), diffusion-uncond (no space group at all), diffusion-sg (told the reference's space group; a conditional model), "
        "diffusion-wyckoff (on the Wyckoff skeletons of leave-formula-out templates), templates, random, "
        "or any structure-generator plugin.",
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
    csp.add_argument("--steps", type=_positive_int, default=100, help="diffusion sampling steps (default 100)")
    csp.add_argument("--sampler", choices=("ddim", "full"), default="full",
                     help="diffusion sampler: full (predictor-corrector, default) or ddim (4 times fewer network calls)")
    csp.add_argument("--relax-top", type=int, default=0, metavar="N",
                     help="also relax the N lowest-energy samples per row with CHGNet and report matches after "
                     "relaxation (default 0: the literature's unrelaxed protocol only)")
    csp.add_argument("--unseen-prototypes", action="store_true",
                     help="also report the rows whose OQMD prototype label never occurs in the training CSV "
                     "(no template of that structure type exists there)")
    csp.add_argument("--train", type=Path, default=None, metavar="CSV",
                     help="training CSV for --unseen-prototypes (default: train.csv.gz beside CSV)")
    csp.add_argument("--no-energy", action="store_true", help="skip CHGNet energy ranking (no energy-ranked @1)")
    csp.add_argument("--force", action="store_true", help="overwrite an existing --json summary")
    csp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser
