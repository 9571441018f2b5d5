"""``genms types``: the structure-type names GenMS reads, and what one of them resolves to."""

from __future__ import annotations

import argparse
import json

from genms_pmg.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", default=None,
                        help="a name ('scheelite', 'A15'), or a formula for its own type ('CaWO4'): show its card; "
                             "without it, list every name")
    parser.add_argument("--unresolved", action="store_true", help="list only names whose archetype the data lacks")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_types(args: argparse.Namespace) -> int:
    from genms_pmg.knowledge.structure_types import (
        close_names,
        names_table,
        resolve_formula,
        resolve_name,
    )

    if args.query:
        found = resolve_name(args.query)
        if found is None and _is_formula(args.query):
            found = resolve_formula(args.query)
        if found is None:
            close = close_names(args.query)
            raise UsageError(f"no structure type named {args.query!r}"
                             + (f"; close names: {', '.join(close)}" if close else "")
                             + "; `genms types` lists every name")
        return _show(found, as_json=args.json)
    rows = []
    for name in dict.fromkeys(r.name for r in names_table()):
        t = resolve_name(name)
        if args.unresolved and t.groups:
            continue
        rows.append({"name": name, "archetypes": list(t.archetypes), "labels": [list(g) for g in t.groups],
                     "unresolved": list(t.unresolved), "source": t.sources[0] if t.sources else ""})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'name':28s} {'archetype':18s} labels (OQMD)")
    for r in rows:
        labels = "; ".join("+".join(g) for g in r["labels"]) or f"(not in the data: {', '.join(r['unresolved'])})"
        print(f"{r['name']:28s} {', '.join(r['archetypes']) or '-':18s} {labels}")
    print(f"\n{len(rows)} names; a formula followed by -type (CaWO4-type) needs no name")
    return 0


def _is_formula(text: str) -> bool:
    from genms_pmg.data.oqmd import normalize_formula

    try:
        normalize_formula(text)
    except UsageError:
        return False
    return any(c.isupper() for c in text)


def _show(found, *, as_json: bool) -> int:
    from genms_pmg.knowledge.families import get_family
    from genms_pmg.knowledge.structure_types import choose_family

    key = choose_family(found)
    card = get_family(key)
    members = [m.formula for m in card.extra.get("members", ())][:15] or list(card.examples)
    payload = {"name": found.name, "family": key, "card": card.name, "template": card.template,
               "space_groups": list(card.space_groups), "oqmd_prototypes": list(card.oqmd_prototypes),
               "sites": [{"role": s.role, "count": s.count, "kind": s.kind, "oxidation_states": list(s.oxidation_states),
                          "elements": list(s.elements or ())[:12], "coordination": s.coordination} for s in card.sites],
               "members": members, "variants": [list(g) for g in found.groups], "sources": list(found.sources),
               "notes": card.notes}
    if as_json:
        print(json.dumps(payload, indent=1))
        return 0
    print(f"{found.name}: {card.name}\n  family key: {key}\n  template: {card.template}; space groups: "
          f"{', '.join(map(str, card.space_groups))}; OQMD labels: {', '.join(card.oqmd_prototypes)}")
    for s in payload["sites"]:
        extra = f", elements {', '.join(s['elements'])}" if s["elements"] else ""
        cn = f", CN {s['coordination']}" if s["coordination"] else ""
        print(f"  site {s['role']} x{s['count']}: {s['kind']}{cn}, oxidation {s['oxidation_states']}{extra}")
    print(f"  members (most stable first): {', '.join(members)}")
    if len(found.groups) > 1:
        print(f"  other formula templates of this name: {'; '.join('+'.join(g) for g in found.groups[1:])}")
    print(f"  source: {'; '.join(found.sources)}")
    return 0
