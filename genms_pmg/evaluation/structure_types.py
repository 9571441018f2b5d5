"""Benchmark logic for requests that name a structure type (issue 20).

The request set (``tests/data/structure_type_requests.json``) was written by someone who had not read the
names table: each request has its text, the elements it requires, the type's acceptable space groups, the
atom ratio and one expected known member, and a ``split`` ("tune" or "blind"; the blind part is run once,
never tuned on).

Three levels, each reported per split:
- understood: the parse resolves a family whose space groups include one of the type's and whose
  formula template fits the ratio, with every required element read;
- proposed: the expected known member is among the proposer's first ``top`` formulae;
- returned (``generate=True``, slow): every structure ``genms generate`` returns has one of the type's
  space groups (spglib, symprec 0.1), the required elements and the ratio; the expected member is returned.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pymatgen.core import Composition

from genms_pmg.errors import UsageError

__all__ = ["TypeRequestRecord", "evaluate_request", "load_requests", "summarize"]


@dataclass
class TypeRequestRecord:
    """What happened to one request."""

    text: str
    split: str
    structure_type: str
    family: str | None = None
    refused: str | None = None
    understood: bool = False
    why_not: str = ""
    member_proposed: bool | None = None
    proposals: list[str] = field(default_factory=list)
    returned: list[dict] = field(default_factory=list)
    compliant: bool | None = None
    member_returned: bool | None = None
    seconds: float = 0.0


def load_requests(path: str | Path) -> list[dict]:
    return json.loads(Path(path).read_text())


def _reduced(values) -> list[int]:
    from genms_pmg.parsing import _reduced as reduced_ints

    return reduced_ints([int(round(v)) for v in values])


def _ratio_ok(template_counts: list[int], ratio: list[int] | None) -> bool:
    from genms_pmg.parsing import _ratio_fits

    return ratio is None or _ratio_fits(_reduced(ratio), list(template_counts))


def evaluate_request(item: dict, *, top: int = 20, generate: bool = False, n: int = 3, seed: int = 0,
                     generator=None) -> TypeRequestRecord:
    """Parse (and optionally run) one request and judge it against what its author wrote down."""
    from genms_pmg.knowledge.families import get_family
    from genms_pmg.parsing import parse

    t0 = time.perf_counter()
    rec = TypeRequestRecord(item["text"], item["split"], item["structure_type"])
    try:
        req = parse(item["text"])
    except UsageError as exc:
        rec.refused = str(exc)
        rec.why_not = "refused"
        rec.seconds = time.perf_counter() - t0
        return rec
    rec.family = req.family
    card = get_family(req.family) if req.family else None
    wanted = set(item["space_groups"])
    missing = [e for e in item["elements"] if e not in req.required_elements
               and not any(e in g for g in req.required_any) and not _anion_said(e, req.anion_classes)]
    if card is None:
        rec.why_not = "no structure type read"
    elif not wanted & set(card.space_groups) and not (req.space_group and req.space_group in wanted):
        rec.why_not = f"space groups {list(card.space_groups)} not {sorted(wanted)}"
    elif not _ratio_ok([s.count for s in card.sites], item.get("ratio")):
        rec.why_not = f"template {card.template} does not fit ratio {item['ratio']}"
    elif missing:
        rec.why_not = f"elements not read: {missing}"
    else:
        rec.understood = True
    expected = item.get("expected_member")
    expected = Composition(expected).reduced_formula if expected else None
    if card is not None:
        from genms_pmg.formulas.ranking import propose_ranked
        from genms_pmg.generator import formula_stage

        try:
            proposer, heuristics = formula_stage()
            ranked = propose_ranked(req, proposers=[proposer], heuristics=heuristics, n=top)
            rec.proposals = [r.formula for r in ranked if r.passed][:top]
        except UsageError as exc:
            rec.why_not = rec.why_not or f"proposer: {exc}"
        if expected:
            rec.member_proposed = expected in rec.proposals
    if generate and rec.understood:
        _run(rec, item, req, generator, n=n, seed=seed, expected=expected)
    rec.seconds = round(time.perf_counter() - t0, 2)
    return rec


def _anion_said(element: str, classes: list[str]) -> bool:
    from genms_pmg.knowledge.families import ANION_CLASSES

    return any(element in ANION_CLASSES[c][0] for c in classes if c in ANION_CLASSES)


def _run(rec: TypeRequestRecord, item: dict, req, generator, *, n: int, seed: int, expected: str | None) -> None:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        cands = generator.generate(item["text"], n=n)
    except UsageError as exc:
        rec.refused = str(exc)
        rec.compliant = False
        return
    ok = bool(cands)
    for c in cands:
        try:
            analyzer = SpacegroupAnalyzer(c.structure, symprec=0.1)
            sg, number = analyzer.get_space_group_symbol(), analyzer.get_space_group_number()
        except Exception:  # noqa: BLE001 - spglib failure: counted as not compliant, recorded
            sg, number = "?", None
        comp = c.structure.composition
        has = all(e in {el.symbol for el in comp.elements} for e in item["elements"])
        ratio = item.get("ratio")
        ratio_ok = ratio is None or _reduced(comp.reduced_composition.get_el_amt_dict().values()) == _reduced(ratio)
        good = number in set(item["space_groups"]) and has and ratio_ok
        ok = ok and good
        rec.returned.append({"formula": c.formula, "space_group": sg, "number": number, "compliant": good})
    rec.compliant = ok
    if expected:
        rec.member_returned = any(r["formula"] == expected for r in rec.returned)


def summarize(records: list[TypeRequestRecord]) -> dict:
    """Rates per split: understood, member proposed (of requests with a member), returned compliance."""
    out = {}
    for split in ("tune", "blind", "all"):
        rs = [r for r in records if split == "all" or r.split == split]
        if not rs:
            continue
        with_member = [r for r in rs if r.member_proposed is not None]
        ran = [r for r in rs if r.compliant is not None]
        member_ran = [r for r in ran if r.member_returned is not None]
        out[split] = {
            "requests": len(rs),
            "understood": sum(r.understood for r in rs) / len(rs),
            "refused": sum(r.refused is not None for r in rs),
            "member_proposed@top": (sum(bool(r.member_proposed) for r in with_member) / len(with_member)
                                    if with_member else None),
            "generated": len(ran),
            "compliant": sum(bool(r.compliant) for r in ran) / len(ran) if ran else None,
            "member_returned": (sum(bool(r.member_returned) for r in member_ran) / len(member_ran)
                                if member_ran else None),
        }
    return out


def records_as_dicts(records: list[TypeRequestRecord]) -> list[dict]:
    return [asdict(r) for r in records]
