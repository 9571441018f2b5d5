"""Wrap an ASE calculator (EMT) as an energy-model plugin and run a search with it (--energy-model emt).

    python examples/04_energy_model_plugin.py --out /tmp/emt

EMT covers Al, Cu, Ni, Pd, Ag, Pt, Au, so the request is an intermetallic of those. Registration:

    [options.entry_points]
    genms.energy_models =
        emt = emt_energy:EMTEnergyModel
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _plugin_install import install_entry_point  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--request", default="a metallic compound of Cu and Au")
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--quick", action="store_true", help="tiny search (CI)")
args = parser.parse_args()

env = install_entry_point(args.out / "site", dist="genms-emt", group="genms.energy_models", name="emt",
                          module_file=Path(__file__).parent / "plugins" / "emt_energy.py", obj="EMTEnergyModel")
genms = [sys.executable, "-m", "genms_pmg.cli"]
listed = json.loads(subprocess.run([*genms, "plugins", "--json"], env=env, capture_output=True, text=True, check=True).stdout)
print("genms plugins:", [(p["group"], p["name"], p["state"]) for p in listed if p["name"] == "emt"][0])

size = ["--formulas", "3", "--structures", "2", "--width", "2"] if args.quick else []
proc = subprocess.run([*genms, "generate", args.request, "-n", "2", "--energy-model", "emt", "--generator", "templates",
                       "--no-progress", "--json", *size], env=env, capture_output=True, text=True)
if proc.returncode != 0:
    sys.exit(proc.stderr)
result = json.loads(proc.stdout)
print(f"{'rank':>4}  {'formula':<8} {'E_hull (EMT)':>13} {'E_form (EMT)':>13}")
for cand in result["candidates"]:
    s = cand["scores"]
    print(f"{cand['rank']:>4}  {cand['formula']:<8} {s.get('e_above_hull', float('nan')):>13.3f} {s.get('e_form_per_atom', float('nan')):>13.3f}")
print("provenance of the best:", result["candidates"][0]["provenance"].get("energy_model", "emt"))
