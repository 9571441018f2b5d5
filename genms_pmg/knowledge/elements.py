"""Element lists behind words: 'earth-abundant', 'non-toxic' and named groups ('a rare earth').

Why lists rather than judgement calls at run time: a user must be able to see exactly which
elements a word removed or allowed (``genms parse`` shows the flag or the group, this module the list).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

#: Radioactive elements (no stable isotope, or U and Th): never "non-toxic" nor practical.
RADIOACTIVE: tuple[str, ...] = ("Tc", "Pm", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu")

#: The acute heavy-metal and metalloid poisons that lead-free / non-toxic materials screens remove
#: (Be, Cd, Hg, Pb, Tl, As), plus the radioactive elements.
TOXIC: tuple[str, ...] = ("Be", "Cd", "Hg", "Pb", "Tl", "As", *RADIOACTIVE)

_LANTHANIDES = ("La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")
_3D = ("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")
_4D = ("Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd")
_5D = ("Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg")

#: Named element groups a request may use ("containing a transition metal", "rare-earth-free").
#: Keys are the canonical names the parser maps its words to; the 5d series starts at Hf (La and
#: Lu count as lanthanides), and main-group metals are the heavy p-block metals only.
ELEMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "rare earth": ("Sc", "Y", *_LANTHANIDES),
    "lanthanide": _LANTHANIDES,
    "alkali metal": ("Li", "Na", "K", "Rb", "Cs"),
    "alkaline earth": ("Be", "Mg", "Ca", "Sr", "Ba"),
    "transition metal": (*_3D, *_4D, *_5D),
    "3d transition metal": _3D,
    "4d transition metal": _4D,
    "5d transition metal": _5D,
    "noble metal": ("Ru", "Rh", "Pd", "Ag", "Os", "Ir", "Pt", "Au"),
    "platinum-group metal": ("Ru", "Rh", "Pd", "Os", "Ir", "Pt"),
    "main-group metal": ("Al", "Ga", "In", "Tl", "Ge", "Sn", "Pb", "Sb", "Bi"),
    "chalcogen": ("O", "S", "Se", "Te"),
    "pnictogen": ("N", "P", "As", "Sb", "Bi"),
    "halogen": ("F", "Cl", "Br", "I"),
}

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
