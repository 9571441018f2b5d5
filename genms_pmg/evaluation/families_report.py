"""Markdown report and PNG figures of the families benchmark (:mod:`genms_pmg.evaluation.families`).

Why separate: the report is rebuilt from ``records.jsonl`` alone, so a finished (or resumed) run
can be re-plotted without searching again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genms_pmg.evaluation.families import METRICS, PAPER_GENMS, family_name
from genms_pmg.outputs import save_figure

_LABELS = {"cif": "CIF valid", "structural": "structural valid", "composition": "composition valid",
           "uniqueness": "unique (not MP/ICSD)", "match": "family match"}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _ev(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _savefig(fig, path: Path) -> None:
    save_figure(fig, path, dpi=130)


def reference_counts(families: Sequence[str]) -> dict[str, dict[str, int]]:
    """How many AFLOW and OQMD-ICSD references each family's match rate used."""
    from genms_pmg.structures.family_match import family_references

    out = {}
    for key in families:
        names = [name for name, _ in family_references(key)]
        out[key] = {"aflow": sum(n.startswith("aflow:") for n in names),
                    "oqmd-icsd": sum(n.startswith("oqmd-icsd:") for n in names)}
    return out


def to_markdown(summary: dict, *, command: str, records: list[dict]) -> str:
    fams = summary["families"]
    keys = list(fams)
    lines = [f"# GenMS end-to-end benchmark on {len(keys)} crystal families (Table 1 protocol)", "",
             f"Command: `{command}`", ""]
    s = summary.get("settings", {})
    lines += [f"Settings: {s.get('samples')} structures returned per request, two phrasings per family "
              f"(\"a stable <family> that is not in Materials Project\", \"a new low-energy <family> compound that "
              f"is not in Materials Project or ICSD\", with seeds {s.get('seed')} and {s.get('seed', 0) + 1}); search H = {s.get('formulas')} formulae, L = {s.get('structures')} "
              f"structures per formula and generator, W = {s.get('width')}; generators "
              f"{', '.join(s.get('generators') or ['diffusion', 'templates'])}; CHGNet energies; seed {s.get('seed')}.", ""]
    lines += ["## Beside the paper (GenMS column of Table 1)", "",
              "| family | source | CIF | structural | composition | uniqueness | match | E_f (eV/atom) |",
              "|---|---|---|---|---|---|---|---|"]
    for key in keys:
        if key not in PAPER_GENMS:
            continue
        p = PAPER_GENMS[key]
        r, g = fams[key]["returned"], fams[key]["generated"]
        lines.append(f"| {key} | paper (GNN E_f) | {p['cif']:.2f} | {p['structural']:.2f} | {p['composition']:.2f} | "
                     f"{p['uniqueness']:.2f} | {p['match']:.2f} | {p['e_form']:.2f} |")
        lines.append(f"| | ours, returned | {_pct(r.get('cif'))} | {_pct(r.get('structural'))} | {_pct(r.get('composition'))} | "
                     f"{_pct(r.get('uniqueness'))} | {_pct(r.get('match'))} | {_ev(r.get('e_form'))} |")
        lines.append(f"| | ours, all generated | n/a | {_pct(g.get('structural'))} | {_pct(g.get('composition'))} | "
                     f"{_pct(g.get('uniqueness'))} | {_pct(g.get('match'))} | {_ev(g.get('e_form'))} |")
    lines += ["", "\"returned\": the structures the search hands the user, the best of each formula first (after "
              "R_lo's hard checks, so structural and composition validity are high by construction, and after R_hi's "
              "hard novelty check against Materials Project, so uniqueness is too). \"all generated\": every structure the "
              "generators produced for the expanded formulae, before any check (E_f over those that passed every hard check and have a sane energy).",
              "", "## All families", "",
              "| family | structures | formulae (novel) | CIF | structural | composition | uniqueness | match | "
              "E_f returned | E_f top-K (by R_lo) unrelaxed -> relaxed | match after relax | match all generated | s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        f = fams[key]
        r, g, rel = f["returned"], f["generated"], f.get("relaxed")
        relax_txt = (f"{_ev(rel['e_form_before'])} -> {_ev(rel['e_form_after'])} (K={rel['n']})" if rel else "n/a")
        lines.append(f"| {key} | {r['n']} | {f['formulas']} ({f['unique_formulas']}) | {_pct(r.get('cif'))} | "
                     f"{_pct(r.get('structural'))} | {_pct(r.get('composition'))} | {_pct(r.get('uniqueness'))} | "
                     f"{_pct(r.get('match'))} | {_ev(r.get('e_form'))} | {relax_txt} | "
                     f"{_pct(rel['match_after']) if rel else 'n/a'} | {_pct(g.get('match'))} | {f['seconds']:.0f} |")
    lines += ["", "## By generator (returned structures)", "",
              "share: the generator's part of the structures the search returned for the family.", "",
              "| family | generator | n | share | match | uniqueness | E_f |", "|---|---|---|---|---|---|---|"]
    for key in keys:
        total = sum(r["n"] for r in fams[key]["by_generator"].values())
        for gen, r in fams[key]["by_generator"].items():
            share = _pct(r["n"] / total) if total else "n/a"
            lines.append(f"| {key} | {gen} | {r['n']} | {share} | {_pct(r.get('match'))} | {_pct(r.get('uniqueness'))} | "
                         f"{_ev(r.get('e_form'))} |")
    counts = reference_counts(keys)
    lines += ["", "## How the match references are chosen", "",
              "Per family: the AFLOW prototypes named on its card (pymatgen's `AFLOW_PROTOTYPE_LIBRARY`) and, for each "
              "OQMD-ICSD prototype label on the card (the label encodes the Wyckoff sites and the space group, e.g. "
              "`ABC3_1_a_b_c_221`), up to 3 OQMD-ICSD structures with that label: the card's well-known examples "
              "first, then the lowest energy above the OQMD hull. A structure matches when "
              "`StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10).fit_anonymous` fits it to any reference, as in "
              "appendix A.1. Like the paper's formula-based selection this can give false positives across "
              "families that share a prototype.", "",
              "| family | AFLOW references | OQMD-ICSD references |", "|---|---|---|"]
    for key in keys:
        lines.append(f"| {key} | {counts[key]['aflow']} | {counts[key]['oqmd-icsd']} |")
    errors = [(k, e) for k in keys for e in fams[k]["errors"]]
    if errors:
        lines += ["", "## Requests without results", ""] + [f"- {k}: {e}" for k, e in errors]
    lines += ["", "## Figures", "", "- `formation_energy.png`: formation energy of the returned structures per family.",
              "- `rates.png`: match, uniqueness and validity per family.",
              "- `best_structures.png`: the lowest-energy returned structure of each family (ASE rendering).", ""]
    best = _best_per_family(records, keys)
    if best:
        lines += ["| family | best structure | E_f (eV/atom) | space group | generator | CIF |", "|---|---|---|---|---|---|"]
        for key, c in best.items():
            lines.append(f"| {key} | {c['formula']} | {_ev(c['e_form'])} | {c.get('space_group')} | {c.get('generator')} | "
                         f"`{c['file']}` |")
    return "\n".join(lines) + "\n"


def _best_per_family(records: list[dict], keys: Sequence[str]) -> dict[str, dict]:
    best = {}
    for key in keys:
        cands = [c for r in records if r["kind"] == "search" and r["family"] == key for c in r["candidates"]
                 if c.get("e_form") is not None and math.isfinite(c["e_form"])]
        if cands:
            best[key] = min(cands, key=lambda c: c["e_form"])
    return best


def plot_all(summary: dict, records: list[dict], out: Path) -> list[Path]:
    """formation_energy.png, rates.png and best_structures.png in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(summary["families"])
    written = []
    energies = [[c["e_form"] for r in records if r["kind"] == "search" and r["family"] == k for c in r["candidates"]
                 if c.get("e_form") is not None and math.isfinite(c["e_form"])] for k in keys]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(keys), 3.8))
    shown = [(k, e) for k, e in zip(keys, energies) if e]
    if shown:
        ax.violinplot([e for _, e in shown], showmedians=True)
        ax.set_xticks(range(1, len(shown) + 1), [k.replace("_", "\n") for k, _ in shown], fontsize=8)
    for i, (k, _) in enumerate(shown, 1):
        if k in PAPER_GENMS:
            ax.plot([i - 0.3, i + 0.3], [PAPER_GENMS[k]["e_form"]] * 2, color="crimson", lw=2,
                    label="paper GenMS mean (GNN)" if i == 1 else None)
    ax.set_ylabel("formation energy (eV/atom, CHGNet)")
    ax.set_title("Returned structures per family")
    if any(k in PAPER_GENMS for k, _ in shown):
        ax.legend(fontsize=8)
    path = out / "formation_energy.png"
    _savefig(fig, path)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(keys), 3.6))
    x = np.arange(len(keys))
    width = 0.8 / len(METRICS)
    for j, metric in enumerate(METRICS):
        vals = [summary["families"][k]["returned"].get(metric) or 0.0 for k in keys]
        ax.bar(x + (j - (len(METRICS) - 1) / 2) * width, vals, width, label=_LABELS[metric])
    ax.set_xticks(x, [k.replace("_", "\n") for k in keys], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of returned structures")
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    path = out / "rates.png"
    _savefig(fig, path)
    plt.close(fig)
    written.append(path)

    best = _best_per_family(records, keys)
    if best:
        path = out / "best_structures.png"
        _plot_structures(best, out, path)
        written.append(path)
    return written


def _plot_structures(best: dict[str, dict], out: Path, path: Path) -> None:
    """A grid of ASE renderings (2x2x2 supercells of small cells) of each family's best structure."""
    import matplotlib.pyplot as plt
    from ase.visualize.plot import plot_atoms
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.cif import CifParser

    cols = min(4, len(best))
    rows = math.ceil(len(best) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (key, cand) in zip(axes.flat, best.items()):
        structure = CifParser(out / cand["file"]).parse_structures(primitive=False)[0]
        atoms = AseAtomsAdaptor.get_atoms(structure)
        if len(atoms) <= 12:
            atoms = atoms.repeat((2, 2, 2))
        plot_atoms(atoms, ax, rotation="15x,-30y,0z", radii=0.45)
        ax.set_title(f"{family_name(key)}\n{cand['formula']}  {_ev(cand['e_form'])} eV/atom", fontsize=8)
    _savefig(fig, path)
    plt.close(fig)
