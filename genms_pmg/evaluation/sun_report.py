"""report.md and figures of ``genms benchmark sun`` (see :mod:`genms_pmg.evaluation.sun`)."""

from __future__ import annotations

from pathlib import Path

from genms_pmg.evaluation.sun import MATTERGEN_SUN, THRESHOLDS
from genms_pmg.outputs import save_figure


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _num(x, fmt: str = "+.2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def to_markdown(summary: dict, *, command: str) -> str:
    s = summary["settings"]
    lines = [
        "# Stable, unique, novel (S.U.N.) by an independent judge", "",
        f"Command: `{command}`", "",
        f"Request per family: \"a new <family> that is not in Materials Project or ICSD\"; the top {s['samples']} "
        f"returned candidates of each, ranked by `{s['energy_model']}`, relaxed (FIRE + FrechetCellFilter, fmax 0.05, "
        f"at most {s['relax_steps']} steps) and placed on the convex hull of every OQMD-ICSD phase of their chemical "
        f"system by the judge `{s['judge']}` (references at their OQMD geometries, MP2020-compatible energies). "
        "Stable: judge E_hull <= 0 (or <= 0.1 eV/atom); unique: no better-ranked candidate is the same structure "
        "(StructureMatcher); novel: formula in neither the Materials Project nor the ICSD list; match: the "
        "judge-relaxed structure fits the family's references. S.U.N. = stable and unique and novel. Anchor: "
        f"MatterGen {_pct(MATTERGEN_SUN)} S.U.N. on its own samples (a different set-up: read it as an order of magnitude).",
        "",
        "`before`: no relaxation, formation-energy ranking (the search before issue 10). `after`: relaxation of the "
        f"best {s.get('relax_top', 2)} structures of each formula and energy above the hull in R_lo, with the calibrated "
        "bound for new materials.", "",
    ]
    rankings = summary["rankings"]
    lines += ["## Overall", "", "| ranking | n | stable (<=0) | stable (<=0.1) | unique | novel | match | S.U.N. | "
              "S.U.N. (<=0.1) | median judge E_hull | Spearman rank~judge E_hull | Spearman score~judge E_hull |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rankings.items():
        o = r["overall"]
        lines.append(f"| {name} | {o.get('n', 0)} | {_pct(o.get('stable'))} | {_pct(o.get('stable_0.1'))} | "
                     f"{_pct(o.get('unique'))} | {_pct(o.get('novel'))} | {_pct(o.get('match'))} | {_pct(o.get('sun'))} | "
                     f"{_pct(o.get('sun_0.1'))} | {_num(o.get('median_judge_e_hull'), '+.3f')} | "
                     f"{_num(r.get('spearman_rank_pooled'))} | {_num(r.get('spearman_score_pooled'))} ({r['score']}) |")
    lines += ["", "## Per family", "", "| family | ranking | n | stable (<=0) | stable (<=0.1) | novel | match | S.U.N. | "
              "median judge E_hull | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    families = next(iter(rankings.values()))["families"] if rankings else {}
    for key in families:
        for name, r in rankings.items():
            f = r["families"][key]
            note = (f.get("error") or "")[:90]
            lines.append(f"| {key} | {name} | {f.get('n', 0)} | {_pct(f.get('stable'))} | {_pct(f.get('stable_0.1'))} | "
                         f"{_pct(f.get('novel'))} | {_pct(f.get('match'))} | {_pct(f.get('sun'))} | "
                         f"{_num(f.get('median_judge_e_hull'), '+.3f')} | {note} |")
    if summary.get("calibration"):
        lines += ["", "## Calibration on known compounds", "",
                  "OQMD-ICSD compounds of the families' stoichiometries, on the OQMD hull or 0.1-0.3 eV/atom above it, "
                  "each relaxed and judged with its own formula left out of the hull. Fraction classified right at "
                  "each bound (on-hull: E_hull <= bound; above: E_hull > bound):", "",
                  "| model | n on hull | n above | bound | on hull right | above right | balanced accuracy |",
                  "|---|---|---|---|---|---|---|"]
        for model, c in summary["calibration"].items():
            for t in THRESHOLDS:
                v = c["thresholds"][str(t)]
                lines.append(f"| {model} | {c['n_on_hull']} | {c['n_above']} | {t:.3f} | {_pct(v['on_hull_right'])} | "
                             f"{_pct(v['above_right'])} | {_pct(v['balanced_accuracy'])} |")
    lines += ["", "## Figures", "", "- `sun_rates.png`: stable and S.U.N. rates per family, before and after.",
              "- `ranking_vs_judge.png`: the ranking model's score against the judge's E_hull.",
              "- `calibration.png`: judged E_hull of known compounds on and above the OQMD hull.", ""]
    return "\n".join(lines)


def plot_all(summary: dict, records: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    paths = []
    rankings = summary["rankings"]
    if rankings:
        families = list(next(iter(rankings.values()))["families"])
        fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
        x = np.arange(len(families))
        for ax, metric, title in ((axes[0], "stable", "stable (judge E_hull <= 0)"), (axes[1], "sun", "S.U.N.")):
            for i, (name, r) in enumerate(rankings.items()):
                vals = [r["families"][k].get(metric) or 0.0 for k in families]
                ax.bar(x + (i - 0.5) * 0.38, vals, 0.38, label=name)
            ax.set_xticks(x, families, rotation=60, ha="right")
            ax.set_title(title)
            ax.set_ylim(0, 1)
        axes[1].axhline(MATTERGEN_SUN, color="k", ls="--", lw=1, label="MatterGen S.U.N.")
        axes[0].legend()
        axes[1].legend()
        paths.append(out / "sun_rates.png")
        save_figure(fig, paths[-1], dpi=120)
        plt.close(fig)
        fig, axes = plt.subplots(1, len(rankings), figsize=(5 * len(rankings), 4))
        axes = np.atleast_1d(axes)
        for ax, (name, r) in zip(axes, rankings.items()):
            rows = [row for rec in records if rec["kind"] == "judge" and rec["ranking"] == name for row in rec["rows"]]
            pts = [(row.get(r["score"]), row["judge_e_hull"]) for row in rows
                   if row.get(r["score"]) is not None and row.get("judge_e_hull") is not None]
            if pts:
                ax.scatter(*zip(*pts), s=14)
            ax.set_xlabel(f"ranking score: {r['score']} (eV/atom)")
            ax.set_ylabel("judge E_hull (eV/atom)")
            ax.set_title(f"{name}: Spearman {_num(r.get('spearman_score_pooled'))}")
        paths.append(out / "ranking_vs_judge.png")
        save_figure(fig, paths[-1], dpi=120)
        plt.close(fig)
    calib = [r for r in records if r["kind"] == "calibration"]
    if calib:
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, rec in enumerate(calib):
            for group, sel, marker in (("on hull", lambda r: r["oqmd_e_hull"] <= 0, "o"),
                                       ("0.1-0.3 above", lambda r: r["oqmd_e_hull"] >= 0.1, "x")):
                pts = [(r["oqmd_e_hull"], r["judge_e_hull"]) for r in rec["rows"] if sel(r) and r.get("judge_e_hull") is not None]
                if pts:
                    ax.scatter(*zip(*pts), marker=marker, s=18, label=f"{rec['model']}: {group}", color=f"C{k}")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("OQMD E_hull (eV/atom)")
        ax.set_ylabel("model E_hull, own formula left out (eV/atom)")
        ax.legend(fontsize=7)
        paths.append(out / "calibration.png")
        save_figure(fig, paths[-1], dpi=120)
        plt.close(fig)
    return paths
