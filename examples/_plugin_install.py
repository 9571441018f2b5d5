"""Make a plugin class discoverable the way `pip install` does, without pip (for these examples).

`pip install .` on a package whose setup.cfg declares `[options.entry_points]` writes a
`<name>.dist-info/entry_points.txt` into site-packages; `importlib.metadata` (and so `genms plugins`)
finds plugins there. For a self-contained, offline example we write the same two files into a
folder and put it on PYTHONPATH. For your own plugin, use a real package and `pip install -e .`
(see plugins/genms-hhi for a complete one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def install_entry_point(folder: Path, *, dist: str, group: str, name: str, module_file: Path, obj: str) -> dict:
    """Copy ``module_file`` into ``folder`` with a dist-info declaring one entry point; return an
    environment whose PYTHONPATH makes it discoverable by `genms` subprocesses."""
    folder.mkdir(parents=True, exist_ok=True)
    module = module_file.stem
    shutil.copy(module_file, folder / module_file.name)
    info = folder / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {module}:{obj}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return env
