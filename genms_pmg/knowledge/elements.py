"""Element policy lists behind 'earth-abundant' and 'non-toxic' requests.

Why lists rather than judgement calls at run time: a user must be able to see exactly which
elements a word removed (``genms parse`` shows the flag, this module the list).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

#: Radioactive elements (no stable isotope, or U and Th): never "non-toxic" nor practical.
RADIOACTIVE: tuple[str, ...] = ("Tc", "Pm", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu")

#: The acute heavy-metal and metalloid poisons that lead-free / non-toxic materials screens remove
#: (Be, Cd, Hg, Pb, Tl, As), plus the radioactive elements.
TOXIC: tuple[str, ...] = ("Be", "Cd", "Hg", "Pb", "Tl", "As", *RADIOACTIVE)

#: Crustal abundance (mg/kg) below which an element is "scarce" (CRC values, as shipped by SMACT).
SCARCE_BELOW_MG_PER_KG = 1.0


@lru_cache(maxsize=1)
def _scarce() -> tuple[str, ...]:
    """Elements rarer than 1 mg/kg in Earth's crust or without a tabulated abundance, Z <= 94."""
    import smact

    out = []
    for z in range(1, 95):
        symbol = smact.ordered_elements(z, z)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                abundance = smact.Element(symbol).crustal_abundance
            except Exception:  # SMACT lacks data for some synthetic elements
                abundance = None
        if abundance is None or abundance < SCARCE_BELOW_MG_PER_KG:
            out.append(symbol)
    return tuple(out)


def __getattr__(name: str):
    # SCARCE is computed from SMACT's table on first use so importing this module stays cheap
    if name == "SCARCE":
        return _scarce()
    raise AttributeError(name)
