"""Rediscovery: hide known members of a family from every table, ask for "a new <family>", count
how many of the hidden ones come back.

Protocol, per ionic family card (``genms benchmark rediscovery``):

1. *Eligible* members: OQMD-ICSD structures that carry one of the card's prototype labels
   (:func:`genms_pmg.knowledge.members.known_members`, ``verified``) and that OQMD puts on its hull
   (stability <= 0.0 eV/atom), less the card's examples (pymatgen reduced formulas compared).
2. *Hidden*: a seeded random ``fraction`` of them (at least one), drawn per family from the seed
   and the family key, so one family's draw does not depend on which others run.
3. Inside :func:`genms_pmg.data.forget.forgetting` of the hidden formulas (every data table:
   known-formula indexes, template pool, lookup tables, known members, substitution priors, hull)
   the request "a new <family>" is parsed and pi_hi (the default offline proposer, every formula
   heuristic, as :func:`genms_pmg.generator.formula_stage` builds them) proposes ``top`` formulas;
   the passed ones are kept in rank order. precision@k = hidden among the first k / k (a list
   shorter than k counts the empty slots as misses); recall@top = hidden among the first ``top`` /
   number hidden.
4. Structures (optional): for each rediscovered formula, still inside ``forgetting``, the template
   generator makes L structures with the family's card, the energy model scores them unrelaxed and
   the lowest is compared by ``StructureMatcher`` (default tolerances, and the paper's
   stol=0.5, ltol=0.3, angle_tol=10) with the hidden OQMD structure (that formula, a card
   prototype label, lowest OQMD stability). The template generator also gets the hidden formulas
   as ``exclude_formulas``: its pymatgen AFLOW prototypes do not consult ``forgetting``.
5. Baseline: a uniform draw from the charge-balanced formulas of the family's stoichiometry. The
   pool is every filling of the card's sites (site counts; a site's own element list where the
   card gives one, else :func:`~genms_pmg.formulas.chemistry.cation_pool` for cation sites and the
   card's ``default_anions`` for anion sites; a different element on each site) that SMACT calls
   charge balanced (``is_charge_neutral(..., alloys=False)``) and that is not known inside
   ``forgetting`` (so the hidden formulas are in it when they fit the template). Expected
   precision@k = hits / pool and expected recall@top = min(top, pool) / pool * hits / hidden,
   with hits = hidden formulas in the pool (min(1, top / pool) when every hidden formula is in
   it); one seeded draw is reported too. Above ``baseline_cap`` site fillings the pool is
   estimated from a seeded uniform sample of ``baseline_cap`` fillings (each valid filling
   weighted by 1 / the number of fillings giving the same formula) and the draw is taken from
   that sample; the report says so.

Results: ``records.jsonl`` (one record per family, reused when the settings match), ``summary.json``,
``report.md`` and ``rediscovery.png`` under ``out``. Every random choice is seeded.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
import zlib
from collections.abc import Sequence
from itertools import permutations
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from genms_pmg.errors import UsageError
from genms_pmg.evaluation.records import read_records, write_records
from genms_pmg.knowledge.families import FAMILIES, FamilyCard, get_family

#: Share of the eligible members hidden per family.
DEFAULT_FRACTION = 0.2
#: Passed formulas kept from pi_hi (recall is measured over these).
DEFAULT_TOP = 50
#: precision@K (issue 20 asks for @20; the 2026-12-02 results used @10).
PRECISION_K = 20
#: Structures per rediscovered formula, L.
DEFAULT_STRUCTURES = 4
#: Families need this many eligible members to be in the default set.
MIN_ELIGIBLE = 5
#: Largest number of site fillings enumerated exhaustively for the baseline; above it, a sample.
BASELINE_CAP = 40000
#: The families benchmark's (the paper's) StructureMatcher settings.
PAPER_MATCHER = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10}
REQUEST = "a new {name}"
#: Bumped when a record's content changes meaning (old records are then not reused).
RECORD_VERSION = 2


# -- the hidden set --------------------------------------------------------------------------
def _reduced(formula: str) -> str:
    from genms_pmg.data.oqmd import normalize_formula

    return normalize_formula(formula)


def _card(key: str) -> FamilyCard:
    if key not in FAMILIES and not key.startswith("type:"):
        raise UsageError(f"unknown family {key!r}; choose from {', '.join(FAMILIES)}")
    return get_family(key)


def eligible_members(key: str) -> list[str]:
    """Reduced formulas of the family's verified OQMD-ICSD members on the OQMD hull (stability
    <= 0 eV/atom), the card's examples left out; sorted. Nothing is forgotten while they are read."""
    from genms_pmg.data.forget import remembering
    from genms_pmg.knowledge.members import known_members

    card = _card(key)
    examples = {_reduced(e) for e in card.examples}
    with remembering():
        members = known_members(key)
    return sorted({_reduced(m.formula) for m in members
                   if m.verified and m.e_above_hull is not None and m.e_above_hull <= 0.0} - examples)


def _rng(seed: int, key: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode()), stream])


def hidden_set(key: str, *, fraction: float = DEFAULT_FRACTION, seed: int = 0,
               eligible: Sequence[str] | None = None) -> list[str]:
    """The seeded random ``fraction`` (at least one) of the eligible members to hide, sorted."""
    if not 0 < fraction <= 1:
        raise UsageError(f"--fraction must be in (0, 1], got {fraction}")
    pool = sorted(eligible_members(key) if eligible is None else eligible)
    if not pool:
        return []
    n = min(len(pool), max(1, math.floor(fraction * len(pool) + 0.5)))
    picks = _rng(seed, key, 0).choice(len(pool), size=n, replace=False)
    return sorted(pool[i] for i in picks)


def default_families(min_eligible: int = MIN_ELIGIBLE) -> list[str]:
    """Ionic family keys (card order) with at least ``min_eligible`` eligible members."""
    return [key for key, card in FAMILIES.items()
            if not card.intermetallic and len(eligible_members(key)) >= min_eligible]


# -- pi_hi -----------------------------------------------------------------------------------
def family_request(key: str):
    """("a new <family>" parsed, how): the parse when it names this family and asks for novelty,
    else a Request built directly with the family and novelty against MP and ICSD."""
    from genms_pmg.evaluation.families import family_name
    from genms_pmg.parsing import parse_request
    from genms_pmg.request import Request

    text = REQUEST.format(name=family_name(key))
    why = ""
    try:
        request = parse_request(text)
        if request.family == key and request.novel:
            return request, "parsed"
        why = f"parsed as family={request.family!r}, novel={request.novel}"
    except UsageError as err:
        why = f"parse failed: {str(err).splitlines()[0]}"
    return Request(text, family=key, novel=True, novelty_sources=["mp", "icsd"]), f"constructed ({why})"


def propose(key: str, hidden: Sequence[str], *, top: int = DEFAULT_TOP, seed: int = 0, stage=None) -> dict:
    """pi_hi's passed formulas for "a new <family>" with ``hidden`` forgotten, in rank order."""
    from genms_pmg.data.forget import forgetting
    from genms_pmg.formulas.ranking import propose_ranked
    from genms_pmg.generator import formula_stage

    proposer, heuristics = stage or formula_stage()
    with forgetting(hidden):
        request, how = family_request(key)
        ranked = propose_ranked(request, proposers=[proposer], heuristics=heuristics, n=top, seed=seed)
    hidden_set_ = set(hidden)
    passed = [r for r in ranked if r.passed][:top]
    return {
        "request": request.text, "request_how": how, "request_parsed": request.as_dict(),
        "n_proposed": len(ranked), "n_passed": len(passed),
        "proposed": [{"rank": i + 1, "formula": r.formula, "value": round(float(r.value), 4),
                      "hidden": _reduced(r.formula) in hidden_set_, "reasons": r.proposal.get("reasons", [])[:2]}
                     for i, r in enumerate(passed)],
    }


def scores(ranked: Sequence[str], hidden: Sequence[str], *, k: int = PRECISION_K, top: int = DEFAULT_TOP) -> dict:
    """precision@k (over k slots) and recall@top of the reduced formulas ``ranked`` (best first)."""
    hidden_set_ = {_reduced(h) for h in hidden}
    reduced = [_reduced(f) for f in ranked]
    hits_k = sum(f in hidden_set_ for f in reduced[:k])
    hits_top = len(set(reduced[:top]) & hidden_set_)
    return {"hits_at_k": hits_k, "hits_at_top": hits_top, "precision_at_k": hits_k / k,
            "recall_at_top": hits_top / len(hidden_set_) if hidden_set_ else None}


# -- baseline --------------------------------------------------------------------------------
def site_choices(card: FamilyCard) -> list[tuple[str, ...]]:
    """Elements allowed on each of the card's sites, in site order."""
    from genms_pmg.formulas import chemistry as chem

    out = []
    for site in card.sites:
        if site.elements is not None:
            out.append(tuple(site.elements))
        elif site.kind == "anion":
            out.append(tuple(card.default_anions))
        else:
            out.append(tuple(chem.cation_pool()))
    return out


def _filling_formula(card: FamilyCard, filling: Sequence[str]) -> str:
    return _reduced("".join(f"{el}{site.count}" for el, site in zip(filling, card.sites)))


def _multiplicity(card: FamilyCard, choices: Sequence[Sequence[str]], filling: Sequence[str]) -> int:
    """How many fillings give the same composition as ``filling`` (distinct elements)."""
    count = {el: site.count for el, site in zip(filling, card.sites)}
    allowed = [set(c) for c in choices]
    return sum(all(count[el] == site.count and el in allowed[i] for i, (el, site) in enumerate(zip(perm, card.sites)))
               for perm in permutations(filling))


def _as_filling(card: FamilyCard, choices: Sequence[Sequence[str]], formula: str) -> tuple[str, ...] | None:
    """A site filling that gives ``formula``, or None when it does not fit the card's template."""
    from pymatgen.core import Composition

    amounts = Composition(formula).get_el_amt_dict()
    if len(amounts) != len(card.sites) or any(abs(a - round(a)) > 1e-6 for a in amounts.values()):
        return None
    for perm in permutations(amounts):
        if all(round(amounts[el]) == site.count and el in choices[i] for i, (el, site) in enumerate(zip(perm, card.sites))):
            return tuple(perm)
    return None


def baseline(key: str, hidden: Sequence[str], *, k: int = PRECISION_K, top: int = DEFAULT_TOP, seed: int = 0,
             cap: int = BASELINE_CAP) -> dict:
    """Uniform draw from charge-balanced, unknown formulas of the card's stoichiometry (see module doc)."""
    from genms_pmg.data.forget import forgetting
    from genms_pmg.data.known import KnownFormulaIndex
    from genms_pmg.formulas import chemistry as chem

    card = _card(key)
    choices = site_choices(card)
    sizes = [len(c) for c in choices]
    total = int(np.prod(sizes, dtype=np.int64))
    rng = _rng(seed, key, 1)
    index = KnownFormulaIndex.default()
    hidden_set_ = {_reduced(h) for h in hidden}
    verdict: dict[str, bool] = {}

    def valid(filling: Sequence[str]) -> str | None:
        if len(set(filling)) != len(filling):
            return None
        formula = _filling_formula(card, filling)
        if formula not in verdict:
            verdict[formula] = chem.is_charge_neutral(formula, alloys=False) and not index.is_known(formula)
        return formula if verdict[formula] else None

    with forgetting(hidden):
        exhaustive = total <= cap
        if exhaustive:
            order = np.arange(total)
        else:
            order = np.sort(rng.choice(total, size=cap, replace=False))
        fillings = [tuple(choices[i][d] for i, d in enumerate(np.unravel_index(int(j), sizes))) for j in order]
        found = [(f, valid(f)) for f in fillings]
        in_pool = {h for h in hidden_set_
                   if (fill := _as_filling(card, choices, h)) is not None and valid(fill) is not None}
    if exhaustive:
        pool = sorted({f for _, f in found if f is not None})
        pool_size = float(len(pool))
        draw = [pool[i] for i in rng.permutation(len(pool))[:top]]
    else:
        weights = [1.0 / _multiplicity(card, choices, fill) if f is not None else 0.0 for fill, f in found]
        pool_size = total * float(np.mean(weights))
        draw, seen = [], set()
        accept = rng.random(len(found))
        for i in rng.permutation(len(found)):  # a valid filling kept with probability 1/multiplicity: uniform over formulas
            f = found[i][1]
            if f is not None and f not in seen and accept[i] < weights[i]:
                seen.add(f)
                draw.append(f)
                if len(draw) >= top:
                    break
    hits = len(in_pool)
    n_hidden = len(hidden_set_)
    drawn = scores(draw, hidden, k=k, top=top)
    return {
        "fillings": total, "exhaustive": exhaustive, "sampled": None if exhaustive else cap,
        "pool": pool_size, "hidden_in_pool": sorted(in_pool),
        "expected_precision_at_k": (min(k, pool_size) * hits / pool_size / k) if pool_size else 0.0,
        "expected_recall_at_top": (min(top, pool_size) / pool_size * hits / n_hidden) if pool_size and n_hidden else 0.0,
        "draw": draw, "draw_precision_at_k": drawn["precision_at_k"], "draw_recall_at_top": drawn["recall_at_top"],
        "site_choices": [len(c) for c in choices],
    }


# -- structures ------------------------------------------------------------------------------
def reference_row(key: str, formula: str):
    """The OQMD-ICSD row of ``formula`` with a card prototype label and the lowest stability (or None)."""
    from genms_pmg.data.forget import remembering
    from genms_pmg.data.oqmd import ReferenceStructureDB

    labels = set(_card(key).oqmd_prototypes)
    reduced = _reduced(formula)
    with remembering():
        rows = [r for r in ReferenceStructureDB.default().candidates_for(reduced)
                if r.formula == reduced and r.proto_name in labels]
    if not rows:
        return None
    return min(rows, key=lambda r: (r.stability if r.stability is not None else math.inf, r.id))


def _aflow_formulas() -> frozenset[str]:
    from genms_pmg.structures.templates import _aflow_entries

    return frozenset(t.formula for _, t, _ in _aflow_entries())


def structure_check(key: str, formula: str, hidden: Sequence[str], *, model, n: int = DEFAULT_STRUCTURES,
                    seed: int = 0) -> dict:
    """L template structures for ``formula`` (``hidden`` forgotten), the lowest by ``model``, matched
    to the hidden OQMD structure."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Composition

    from genms_pmg.data.forget import forgetting
    from genms_pmg.data.oqmd import ReferenceStructureDB
    from genms_pmg.structures.templates import TemplateGenerator

    start = time.perf_counter()
    row = reference_row(key, formula)
    out: dict = {"formula": formula, "reference": row.name if row else None,
                 "reference_prototype": row.proto_name if row else None,
                 "aflow_prototype_formula": _reduced(formula) in _aflow_formulas()}
    if row is None:
        return {**out, "error": "no OQMD-ICSD structure with a card prototype label", "seconds": 0.0}
    reference = ReferenceStructureDB.default().structure(row.id)
    with forgetting(hidden):
        generated = TemplateGenerator(exclude_formulas=hidden).generate(Composition(formula), n=n, seed=seed, family=key)
    if not generated:
        return {**out, "n_structures": 0, "match": False, "match_paper": False, "any_match": False,
                "error": "the template generator made no structure", "seconds": time.perf_counter() - start}
    energies = np.asarray(model.predict_energy_per_atom([g.structure for g in generated]), dtype=float)
    default, paper = StructureMatcher(), StructureMatcher(**PAPER_MATCHER)
    each = [bool(default.fit(g.structure, reference)) for g in generated]
    if np.all(np.isnan(energies)):
        best = None
    else:
        best = int(np.nanargmin(energies))
    info = generated[best].info if best is not None else {}
    return {**out, "n_structures": len(generated),
            "energies": [None if not math.isfinite(e) else round(float(e), 4) for e in energies],
            "best": best, "best_template": info.get("template_name"), "best_template_formula": info.get("template_formula"),
            "best_prototype": info.get("proto_label"), "best_template_source": info.get("template_source"),
            "match": bool(best is not None and each[best]),
            "match_paper": bool(best is not None and paper.fit(generated[best].structure, reference)),
            "any_match": any(each), "each_match": each, "seconds": time.perf_counter() - start}


# -- the run ---------------------------------------------------------------------------------
def code_state() -> dict:
    """The package's git commit and its uncommitted changes (files and a digest of the diff), so a
    record says which proposer made it; {} outside a git checkout."""
    import hashlib
    import subprocess

    root = Path(__file__).resolve().parents[2]

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, check=True, timeout=30).stdout

    try:
        head = git("rev-parse", "HEAD").strip()
        dirty = sorted(line[3:] for line in git("status", "--porcelain", "--", "genms_pmg").splitlines())
        diff = git("diff", "HEAD", "--", "genms_pmg")
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head, "uncommitted": dirty,
            "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None}


def _unfiltered_on_hull(key: str) -> int | None:
    """Verified on-hull members before ``known_members``' plausibility filter (examples excepted), if
    the members module exposes them."""
    from genms_pmg.knowledge import members

    verified = getattr(members, "_verified", None)
    if verified is None:
        return None
    examples = {_reduced(e) for e in _card(key).examples}
    return len({_reduced(m.formula) for m in verified(key)
                if m.e_above_hull is not None and m.e_above_hull <= 0.0} - examples)


def _fingerprint(settings: dict) -> str:
    from genms_pmg.evaluation.families import _fingerprint as fp

    return fp(settings)


def family_record(key: str, *, fraction: float, top: int, k: int, seed: int, structures: int,
                  structure_limit: int | None, baseline_cap: int, model_factory, stage, tag: str,
                  code: dict | None = None) -> dict:
    """Everything measured for one family (one line of records.jsonl)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    eligible = eligible_members(key)
    hidden = hidden_set(key, fraction=fraction, seed=seed, eligible=eligible)
    timings["members"] = time.perf_counter() - t
    record: dict = {"family": key, "settings": tag, "version": RECORD_VERSION, "code": code_state() if code is None else code,
                    "eligible": len(eligible), "eligible_unfiltered": _unfiltered_on_hull(key),
                    "eligible_formulas": eligible, "hidden": hidden}
    if not hidden:
        return {**record, "error": "no eligible members", "seconds": timings}
    t = time.perf_counter()
    proposal = propose(key, hidden, top=top, seed=seed, stage=stage)
    timings["propose"] = time.perf_counter() - t
    ranked = [p["formula"] for p in proposal["proposed"]]
    record.update(proposal)
    record.update(scores(ranked, hidden, k=k, top=top))
    record["rediscovered"] = [{"formula": p["formula"], "rank": p["rank"]} for p in proposal["proposed"] if p["hidden"]]
    t = time.perf_counter()
    record["baseline"] = baseline(key, hidden, k=k, top=top, seed=seed, cap=baseline_cap)
    timings["baseline"] = time.perf_counter() - t
    record["structures"] = None
    if structures > 0:
        t = time.perf_counter()
        todo = record["rediscovered"][:structure_limit] if structure_limit is not None else record["rediscovered"]
        model = model_factory() if todo else None
        record["structures"] = [structure_check(key, r["formula"], hidden, model=model, n=structures, seed=seed)
                                for r in todo]
        record["structures_skipped"] = len(record["rediscovered"]) - len(todo)
        timings["structures"] = time.perf_counter() - t
    record["seconds"] = timings
    return record


def run_rediscovery(
    families: Sequence[str] | None = None,
    *,
    out: str | Path,
    fraction: float = DEFAULT_FRACTION,
    top: int = DEFAULT_TOP,
    k: int = PRECISION_K,
    seed: int = 0,
    structures: int = DEFAULT_STRUCTURES,
    structure_limit: int | None = None,
    baseline_cap: int = BASELINE_CAP,
    energy_model: str = "chgnet",
    min_eligible: int = MIN_ELIGIBLE,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run (or resume) the benchmark; writes records.jsonl, summary.json, report.md and
    rediscovery.png under ``out`` and returns the summary.

    Args:
        families: card keys (None: every ionic family with at least ``min_eligible`` eligible members).
        structures: L, template structures per rediscovered formula (0: no structure check).
        structure_limit: at most this many rediscovered formulas per family get a structure check.
        baseline_cap: site fillings enumerated exhaustively at most; more are sampled.

    Raises:
        UsageError: an unknown or intermetallic family, a family with no eligible member, bad
            settings, or ``out`` holding records made with other settings.
    """
    from genms_pmg.data.cache import write_atomic
    from genms_pmg.evaluation.rediscovery_report import plot, to_markdown

    if not 0 < fraction <= 1:
        raise UsageError(f"--fraction must be in (0, 1], got {fraction}")
    if top < 1 or k < 1 or k > top:
        raise UsageError(f"need 1 <= k <= --top, got k={k}, top={top}")
    if baseline_cap < 1:
        raise UsageError(f"--baseline-cap must be positive, got {baseline_cap}")
    wall = time.perf_counter()
    code = code_state()  # before the proposer's modules are imported: the code this run loads
    if families is None:
        families = default_families(min_eligible)
    families = list(dict.fromkeys(families))
    for key in families:
        card = _card(key)
        if card.intermetallic:
            raise UsageError(f"{key} is an intermetallic family; the baseline counts charge-balanced formulas, "
                             "so the benchmark takes ionic families only")
    settings = {"fraction": fraction, "top": top, "k": k, "seed": seed, "structures": structures,
                "structure_limit": structure_limit, "baseline_cap": baseline_cap, "energy_model": energy_model,
                "request": REQUEST, "version": RECORD_VERSION}
    tag = _fingerprint(settings)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create --out folder {out}: {err.strerror}; choose a writable path") from None
    records_path = out / "records.jsonl"
    records = read_records(records_path)
    if {r.get("settings") for r in records} - {tag}:
        raise UsageError(f"{records_path} holds results made with other settings; use another --out folder "
                         "or delete records.jsonl to start over")
    done = {r["family"]: r for r in records}
    stage = None
    model = None

    def model_factory():
        nonlocal model
        if model is None:
            from genms_pmg import plugins

            model = plugins.create("energy_models", energy_model)
        return model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bar = tqdm(families, desc="rediscovery", disable=not progress)
        for key in bar:
            bar.set_postfix_str(key)
            if key in done:
                continue
            if stage is None:
                from genms_pmg.generator import formula_stage

                stage = formula_stage()
            done[key] = family_record(key, fraction=fraction, top=top, k=k, seed=seed, structures=structures,
                                      structure_limit=structure_limit, baseline_cap=baseline_cap,
                                      model_factory=model_factory, stage=stage, tag=tag, code=code)
            records = [*records, done[key]]
            write_records(records_path, records)
    summary = summarize([done[key] for key in families])
    summary["settings"] = settings
    summary["code"] = code
    summary["wall_seconds_this_run"] = time.perf_counter() - wall
    write_atomic(out / "summary.json", json.dumps(summary, indent=1).encode())
    command = command or f"run_rediscovery(out={str(out)!r})"
    write_atomic(out / "report.md", to_markdown(summary, command=command).encode())
    plot(summary, out / "rediscovery.png")
    return summary


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(records: Sequence[dict]) -> dict:
    """Per-family numbers and the overall (macro mean over families; recall also pooled)."""
    families = {}
    for r in records:
        b = r.get("baseline") or {}
        checks = r.get("structures")
        done = [s for s in (checks or []) if s.get("reference") and s.get("n_structures")]
        families[r["family"]] = {
            "eligible": r["eligible"], "eligible_unfiltered": r.get("eligible_unfiltered"), "hidden": len(r["hidden"]), "hidden_formulas": r["hidden"],
            "request": r.get("request"), "request_how": r.get("request_how"), "n_passed": r.get("n_passed"),
            "precision_at_k": r.get("precision_at_k"), "recall_at_top": r.get("recall_at_top"),
            "hits_at_k": r.get("hits_at_k"), "hits_at_top": r.get("hits_at_top"),
            "rediscovered": r.get("rediscovered", []),
            "reachable": len(b.get("hidden_in_pool", [])),
            "baseline_pool": b.get("pool"), "baseline_exhaustive": b.get("exhaustive"),
            "baseline_expected_precision_at_k": b.get("expected_precision_at_k"),
            "baseline_expected_recall_at_top": b.get("expected_recall_at_top"),
            "baseline_draw_precision_at_k": b.get("draw_precision_at_k"),
            "baseline_draw_recall_at_top": b.get("draw_recall_at_top"),
            "structures_checked": None if checks is None else len(done),
            "structures_skipped": r.get("structures_skipped", 0) if checks is not None else None,
            "structure_match": None if checks is None else sum(s["match"] for s in done),
            "structure_match_paper": None if checks is None else sum(s["match_paper"] for s in done),
            "structure_any_match": None if checks is None else sum(s["any_match"] for s in done),
            "structure_errors": None if checks is None else [f"{s['formula']}: {s['error']}" for s in checks if s.get("error")],
            "error": r.get("error"), "seconds": sum((r.get("seconds") or {}).values()), "code": r.get("code"),
        }
    rows = [f for f in families.values() if f.get("error") is None]
    hidden = sum(f["hidden"] for f in rows)
    checked = [f for f in rows if f["structures_checked"] is not None]
    overall = {
        "families": len(rows), "hidden": hidden, "reachable": sum(f["reachable"] for f in rows),
        "hits_at_k": sum(f["hits_at_k"] for f in rows), "hits_at_top": sum(f["hits_at_top"] for f in rows),
        "precision_at_k": _mean(f["precision_at_k"] for f in rows),
        "recall_at_top": _mean(f["recall_at_top"] for f in rows),
        "recall_at_top_pooled": sum(f["hits_at_top"] for f in rows) / hidden if hidden else None,
        "baseline_expected_precision_at_k": _mean(f["baseline_expected_precision_at_k"] for f in rows),
        "baseline_expected_recall_at_top": _mean(f["baseline_expected_recall_at_top"] for f in rows),
        "baseline_draw_precision_at_k": _mean(f["baseline_draw_precision_at_k"] for f in rows),
        "baseline_draw_recall_at_top": _mean(f["baseline_draw_recall_at_top"] for f in rows),
        "structures_checked": sum(f["structures_checked"] for f in checked) if checked else None,
        "structure_match": sum(f["structure_match"] for f in checked) if checked else None,
        "structure_match_paper": sum(f["structure_match_paper"] for f in checked) if checked else None,
        "structure_any_match": sum(f["structure_any_match"] for f in checked) if checked else None,
        "seconds": sum(f["seconds"] for f in families.values()),
    }
    return {"families": families, "overall": overall}


# -- command line ----------------------------------------------------------------------------
def _families_arg(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for text in values for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``genms benchmark rediscovery``."""
    parser.description = (
        "Hide a seeded random share of each ionic family's known members (OQMD-ICSD, card prototype label, on the "
        "OQMD hull, card examples excepted) from every data table, ask pi_hi for 'a new <family>', and report "
        "precision@K and recall@50 of the hidden formulas against a uniform draw of charge-balanced formulas of "
        "the family's stoichiometry; optionally check that the lowest-energy template structure of each "
        "rediscovered formula matches the hidden OQMD structure. Writes records.jsonl (reused on rerun), "
        "summary.json, report.md and rediscovery.png to --out.")
    parser.add_argument("--families", nargs="+", metavar="A,B", default=None,
                        help="family card keys, comma or space separated (default: every ionic family with at "
                        f"least {MIN_ELIGIBLE} eligible members)")
    parser.add_argument("--out", type=Path, required=True,
                        help="results folder, e.g. benchmarks/results/2026-12-02/rediscovery")
    parser.add_argument("--fraction", type=float, default=DEFAULT_FRACTION,
                        help=f"share of eligible members hidden per family, at least one (default {DEFAULT_FRACTION})")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help=f"passed formulas kept from pi_hi; recall is over these (default {DEFAULT_TOP})")
    parser.add_argument("--k", type=int, default=PRECISION_K,
                        help=f"precision is over the first K passed formulas (default {PRECISION_K})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--structures", metavar="L", type=int, default=DEFAULT_STRUCTURES,
                        help=f"template structures per rediscovered formula (default {DEFAULT_STRUCTURES})")
    parser.add_argument("--no-structures", action="store_true", help="skip the structure check")
    parser.add_argument("--structure-limit", metavar="N", type=int, default=None,
                        help="check structures of at most N rediscovered formulas per family (default: all)")
    parser.add_argument("--baseline-cap", metavar="N", type=int, default=BASELINE_CAP,
                        help=f"enumerate at most N site fillings for the baseline, else sample N (default {BASELINE_CAP})")
    parser.add_argument("--energy-model", default="chgnet", help="energy-model plugin scoring structures (default chgnet)")
    parser.add_argument("--min-eligible", type=int, default=MIN_ELIGIBLE,
                        help=f"eligible members a family needs for the default set (default {MIN_ELIGIBLE})")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _command_line(args: argparse.Namespace, families: list[str] | None) -> str:
    parts = ["genms benchmark rediscovery", f"--out {args.out}"]
    if families:
        parts.append("--families " + ",".join(families))
    defaults = {"fraction": DEFAULT_FRACTION, "top": DEFAULT_TOP, "k": PRECISION_K, "seed": 0, "structures": DEFAULT_STRUCTURES,
                "structure_limit": None, "baseline_cap": BASELINE_CAP, "energy_model": "chgnet",
                "min_eligible": MIN_ELIGIBLE}
    parts += [f"--{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v]
    if args.no_structures:
        parts.append("--no-structures")
    return " ".join(parts)


def run_command(args: argparse.Namespace) -> int:
    """``genms benchmark rediscovery``: validate, run, print the overall table; 0 on success.

    Raises:
        UsageError: bad options (one line; nothing is created for a rejected command).
    """
    from genms_pmg import plugins

    families = _families_arg(args.families)
    for key in families or ():
        if _card(key).intermetallic:
            raise UsageError(f"{key} is an intermetallic family; the benchmark takes ionic families only")
    if not 1 <= args.k <= args.top:
        raise UsageError(f"--k must be between 1 and --top ({args.top}), got {args.k}")
    for name, value, least in (("--top", args.top, 1), ("--structures", args.structures, 0),
                               ("--baseline-cap", args.baseline_cap, 1), ("--min-eligible", args.min_eligible, 1)):
        if value < least:
            raise UsageError(f"{name} must be at least {least}, got {value}")
    if args.structure_limit is not None and args.structure_limit < 0:
        raise UsageError(f"--structure-limit must be 0 or more, got {args.structure_limit}")
    if not 0 < args.fraction <= 1:
        raise UsageError(f"--fraction must be in (0, 1], got {args.fraction}")
    structures = 0 if args.no_structures else args.structures
    if structures:
        names = {info.name for info in plugins.discover("energy_models")}
        if args.energy_model not in names:
            raise UsageError(f"no energy-model plugin {args.energy_model!r}; installed: {', '.join(sorted(names))}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder path")
    summary = run_rediscovery(
        families, out=args.out, fraction=args.fraction, top=args.top, k=args.k, seed=args.seed, structures=structures,
        structure_limit=args.structure_limit, baseline_cap=args.baseline_cap, energy_model=args.energy_model,
        min_eligible=args.min_eligible, progress=not args.no_progress, command=_command_line(args, families))
    report = (args.out / "report.md").read_text()
    print(report.split("## Notes")[0].rstrip())
    print(f"\nreport, summary, records and figure in {args.out}")
    del summary
    return 0


__all__ = ["add_arguments", "baseline", "default_families", "eligible_members", "family_request", "hidden_set",
           "propose", "run_command", "run_rediscovery", "scores", "structure_check", "summarize"]


if __name__ == "__main__":  # pragma: no cover - `python -m genms_pmg.evaluation.rediscovery --out DIR`
    import sys

    _parser = argparse.ArgumentParser(prog="python -m genms_pmg.evaluation.rediscovery")
    add_arguments(_parser)
    try:
        sys.exit(run_command(_parser.parse_args()))
    except UsageError as _err:
        print(f"genms: error: {_err}", file=sys.stderr)
        sys.exit(2)
