"""report.md and the figure of ``genms benchmark rediscovery`` (see :mod:`genms_pmg.evaluation.rediscovery`)."""

from __future__ import annotations

from pathlib import Path

from genms_pmg.outputs import save_figure


def _f(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _small(x) -> str:
    """A baseline value: often far below 0.01, so three significant digits."""
    if x is None:
        return "n/a"
    return "0" if x == 0 else (f"{x:.3f}" if x >= 0.01 else f"{x:.2e}")


def _pool(x, exhaustive) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if exhaustive else f"~{x:,.0f}*"


def _structures(f: dict) -> str:
    if f.get("structures_checked") is None:
        return "not run"
    n = f["structures_checked"]
    text = f"{f['structure_match']}/{n} ({f['structure_match_paper']}/{n}; any {f['structure_any_match']}/{n})"
    if f.get("structures_skipped"):
        text += f", {f['structures_skipped']} not checked"
    return text


def _code(code: dict | None) -> str:
    if not code:
        return "unknown (not a git checkout)"
    text = f"commit {code['commit'][:10]}"
    if code.get("uncommitted"):
        text += f" with uncommitted changes to {', '.join(code['uncommitted'])} (diff sha256 {code['diff_sha256']})"
    return text


def to_markdown(summary: dict, *, command: str) -> str:
    s = summary["settings"]
    k, top = s["k"], s["top"]
    states = {}
    for key, f in summary["families"].items():
        states.setdefault(_code(f.get("code")), []).append(key)
    lines = [
        "# Rediscovery of hidden family members", "",
        f"Command: `{command}`", "",
        "Code: " + ("; ".join(f"{state} ({', '.join(keys)})" for state, keys in states.items())
                    if len(states) > 1 else next(iter(states), _code(summary.get("code")))), "",
        (f"Per family: the verified OQMD-ICSD members (card prototype label) on the OQMD hull (stability <= 0 eV/atom), "
        "card examples excepted, and that `knowledge.members.known_members` keeps (it drops labelled entries whose "
        "composition does not fit the card's sites; the count before that filter is in brackets), are *eligible*; "
        f"a seeded random {100 * s['fraction']:.0f}% of them (at least one) is "
        "*hidden* with `data.forget.forgetting`, which removes them from every data table (known-formula indexes, "
        "template pool, lookup tables, known members, substitution priors, hull). The request \"a new <family>\" goes "
        f"to pi_hi (offline proposer, every formula heuristic); of its {top} passed formulas in rank order, "
        f"precision@{k} = hidden among the first {k} / {k} and recall@{top} = hidden among them / hidden. "
        f"Seed {s['seed']}."), "",
        (f"Baseline: a uniform draw from the charge-balanced (SMACT), unknown formulas of the family's site template "
        f"(the *pool*); expected precision@{k} = hits / pool, expected recall@{top} = min({top}, pool) / pool x "
        f"hits / hidden, hits = hidden formulas in the pool (column *in pool*); one seeded draw beside it. "
        "A pool marked * was estimated from a seeded sample of "
        f"{s['baseline_cap']:,} site fillings (the draw was taken from that sample)."), "",
    ]
    if s["structures"]:
        lines += [(f"Structures: for each rediscovered formula, {s['structures']} template structures (hidden formulas "
                  f"forgotten and excluded from the template pool), scored unrelaxed by `{s['energy_model']}`; the "
                  "lowest is compared with the hidden OQMD structure by `StructureMatcher()` (default tolerances), "
                  "in brackets with the paper's stol=0.5, ltol=0.3, angle_tol=10, and whether any of the "
                  f"{s['structures']} matched."), ""]
    o = summary["overall"]
    lines += [
        "## Overall", "",
        (f"| families | hidden | in pool | precision@{k} (mean) | recall@{top} (mean) | recall@{top} (pooled) | "
        f"baseline E[precision@{k}] | baseline E[recall@{top}] | baseline draw P / R | structure match |"),
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {o['families']} | {o['hidden']} | {o['reachable']} | {_f(o['precision_at_k'])} | {_f(o['recall_at_top'])} | "
        f"{_f(o['recall_at_top_pooled'])} ({o['hits_at_top']}/{o['hidden']}) | {_small(o['baseline_expected_precision_at_k'])} | "
        f"{_small(o['baseline_expected_recall_at_top'])} | {_small(o['baseline_draw_precision_at_k'])} / "
        f"{_small(o['baseline_draw_recall_at_top'])} | "
        + ("not run" if o["structures_checked"] is None else
           f"{o['structure_match']}/{o['structures_checked']} ({o['structure_match_paper']}/{o['structures_checked']}; "
           f"any {o['structure_any_match']}/{o['structures_checked']})") + " |",
        "", _ceiling_line(summary, k), "", "## Per family", "",
        (f"| family | eligible | hidden | in pool | passed | precision@{k} | recall@{top} | baseline pool | "
        f"baseline E[P@{k}] | baseline E[R@{top}] | baseline draw P / R | structure match | rediscovered (rank) |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, f in summary["families"].items():
        if f.get("error"):
            lines.append(f"| {key} | {f['eligible']} | {f['hidden']} | | | | | | | | | | {f['error']} |")
            continue
        found = ", ".join(f"{r['formula']} ({r['rank']})" for r in f["rediscovered"]) or "none"
        before = "" if f.get("eligible_unfiltered") is None else f" ({f['eligible_unfiltered']})"
        lines.append(
            f"| {key} | {f['eligible']}{before} | {f['hidden']} | {f['reachable']} | {f['n_passed']} | {_f(f['precision_at_k'])} | "
            f"{_f(f['recall_at_top'])} | {_pool(f['baseline_pool'], f['baseline_exhaustive'])} | "
            f"{_small(f['baseline_expected_precision_at_k'])} | {_small(f['baseline_expected_recall_at_top'])} | "
            f"{_small(f['baseline_draw_precision_at_k'])} / {_small(f['baseline_draw_recall_at_top'])} | "
            f"{_structures(f)} | {found} |")
    lines += ["", "## Notes", ""]
    constructed = {key: f["request_how"] for key, f in summary["families"].items()
                   if f.get("request_how") and f["request_how"] != "parsed"}
    if constructed:
        lines += ["- Requests built directly (the parse did not give the family): "
                  + "; ".join(f"{key}: {how}" for key, how in constructed.items()), ""]
    else:
        lines += ["- Every request was parsed from \"a new <family>\" (family and novelty as intended).", ""]
    unreachable = {key: f["hidden"] - f["reachable"] for key, f in summary["families"].items()
                   if not f.get("error") and f["hidden"] > f["reachable"]}
    if unreachable:
        lines += ["- Hidden formulas outside the family's site template (they share the card's anonymous OQMD label, "
                  "or SMACT does not balance them), which neither pi_hi's card template nor the baseline can reach: "
                  + ", ".join(f"{key} {n}" for key, n in unreachable.items()) + ".", ""]
    errors = [f"{key}: {e}" for key, f in summary["families"].items() for e in (f.get("structure_errors") or [])]
    if errors:
        lines += ["- Structure checks that did not run: " + "; ".join(errors) + ".", ""]
    lines += [("- pi_hi's chemistry priors (SMACT ICSD oxidation-state statistics, pymatgen's ICSD-mined substitution "
              "probabilities) are aggregate statistics that `forgetting` does not retrain; the hidden compounds "
              "contributed to them."), "",
              "## Figure", "", (f"- `rediscovery.png`: precision@{k} and recall@{top} per family, pi_hi against the "
              "baseline's expectation (the seeded draw as a dot)."), ""]
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s = summary["settings"]
    rows = {key: f for key, f in summary["families"].items() if not f.get("error")}
    keys = list(rows)
    x = np.arange(len(keys))
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.55 * len(keys) + 4), 4.2), sharey=True)
    for ax, metric, title in ((axes[0], "precision_at_k", f"precision@{s['k']}"),
                              (axes[1], "recall_at_top", f"recall@{s['top']}")):
        ax.bar(x - 0.2, [rows[k][metric] or 0.0 for k in keys], 0.4, label="pi_hi (offline proposer)")
        ax.bar(x + 0.2, [rows[k][f"baseline_expected_{metric}"] or 0.0 for k in keys], 0.4,
               label="uniform charge-balanced (expected)")
        ax.scatter(x + 0.2, [rows[k][f"baseline_draw_{metric}"] or 0.0 for k in keys], s=10, color="k", zorder=3,
                   label="uniform draw (seeded)")
        ax.set_xticks(x, keys, rotation=60, ha="right", rotation_mode="anchor")
        ax.set_title(title)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("fraction")
    axes[0].legend(fontsize=7)
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["plot", "to_markdown"]


def _ceiling_line(summary: dict, k: int) -> str:
    """The best mean precision@k the hidden sets allow: a family with H hidden members scores at most min(k, H)/k."""
    rows = [f for f in summary["families"].values() if not f.get("error")]
    if not rows:
        return "No family finished."
    ceiling = sum(min(k, f["hidden"]) / k for f in rows) / len(rows)
    hits = sum(f["hits_at_k"] for f in rows)
    slots = sum(min(k, f["hidden"]) for f in rows)
    return (f"Ceiling: with H hidden members a family scores at most min({k}, H)/{k}; the mean of that over these "
            f"families is {ceiling:.2f}. Hidden members found in the top {k}: {hits} of the {slots} that fit.")

