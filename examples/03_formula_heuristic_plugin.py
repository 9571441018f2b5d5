"""Write a formula heuristic plugin, register it, see it in `genms plugins`, and watch it re-rank.

    python examples/03_formula_heuristic_plugin.py --out /tmp/light

The plugin (examples/plugins/light_elements.py) prefers light elements. Registration is an entry
point in group ``genms.formula_heuristics``; in a real package put this in setup.cfg and
`pip install -e .`:

    [options.entry_points]
    genms.formula_heuristics =
        light_elements = light_elements:LightElements
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
parser.add_argument("--request", default="a spinel oxide containing Mg")
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--quick", action="store_true", help="(no effect: this example is quick)")
args = parser.parse_args()

env = install_entry_point(args.out / "site", dist="genms-light-elements", group="genms.formula_heuristics",
                          name="light_elements", module_file=Path(__file__).parent / "plugins" / "light_elements.py",
                          obj="LightElements")
genms = [sys.executable, "-m", "genms_pmg.cli"]

listed = json.loads(subprocess.run([*genms, "plugins", "--json"], env=env, capture_output=True, text=True, check=True).stdout)
mine = [p for p in listed if p["name"] == "light_elements"]
print("genms plugins:", mine[0]["group"], mine[0]["name"], mine[0]["state"])


def ranking(environment) -> list[str]:
    proc = subprocess.run([*genms, "propose", args.request, "-n", "10", "--json"], env=environment,
                          capture_output=True, text=True, check=True)
    return [f["formula"] for f in json.loads(proc.stdout)["formulas"]]


before = ranking(None)
after = ranking(env)
print(f"{'rank':>4}  {'without plugin':<14}  with light_elements")
for i, (a, b) in enumerate(zip(before, after), 1):
    print(f"{i:>4}  {a:<14}  {b}")
print("changed" if before != after else "unchanged", "ranking")
