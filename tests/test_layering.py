"""Module layering: the Request type never imports the parser (no import cycle between them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "genms_pmg"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_request_does_not_import_the_parser_anywhere_in_it():
    assert not {m for m in _imports(PACKAGE / "request.py") if m.startswith("genms_pmg.parsing")}
    assert "genms_pmg.request" in _imports(PACKAGE / "parsing.py")  # the one direction that is allowed
