"""GenMS: Generative Hierarchical Materials Search (Yang et al., 2024) for pymatgen users.

``LanguageStructureGenerator(seed=0).generate("a stable spinel oxide containing Mg", n=3)``
returns ranked :class:`Candidate` objects holding pymatgen ``Structure``s.
"""

from __future__ import annotations

from genms_pmg.errors import DataUnavailableError, GenMSError, PluginError, UsageError
from genms_pmg.parsing import parse_request
from genms_pmg.request import Request

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "DataUnavailableError",
    "GenMSError",
    "LanguageStructureGenerator",
    "PluginError",
    "Request",
    "StructureGenerator",
    "UsageError",
    "parse_request",
]


def __getattr__(name: str):
    # The generator pulls in torch and CHGNet; import it only when asked for.
    if name in {"Candidate", "LanguageStructureGenerator", "StructureGenerator"}:
        from genms_pmg import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'genms_pmg' has no attribute {name!r}")
