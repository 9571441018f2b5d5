"""Crystal-family cards: the facts the formula proposer and the structure templates rely on.

A card describes a family by its formula template (sites with a count, a kind and the oxidation
states allowed there), the space groups it usually takes, the OQMD prototype labels and AFLOW
prototypes that find its reference structures, and well-known members. Facts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genms_pmg.errors import UsageError

SiteKind = Literal["cation", "anion", "metal"]

#: Anion class -> (anion elements, their oxidation state).
ANION_CLASSES: dict[str, tuple[tuple[str, ...], int]] = {
    "oxide": (("O",), -2),
    "fluoride": (("F",), -1),
    "chloride": (("Cl",), -1),
    "bromide": (("Br",), -1),
    "iodide": (("I",), -1),
    "halide": (("F", "Cl", "Br", "I"), -1),
    "sulfide": (("S",), -2),
    "selenide": (("Se",), -2),
    "telluride": (("Te",), -2),
    "chalcogenide": (("S", "Se", "Te"), -2),
    "nitride": (("N",), -3),
    "phosphide": (("P",), -3),
    "carbide": (("C",), -4),
    "hydride": (("H",), -1),
}


@dataclass(frozen=True)
class SiteSpec:
    """One crystallographic role in a family's formula template.

    Attributes:
        role: a short name ("A", "B", "X").
        count: atoms of this role per formula unit.
        kind: "cation" and "anion" take ionic oxidation states; "metal" is an intermetallic site.
        oxidation_states: oxidation states allowed here (cation > 0, anion < 0; ignored for metal).
        elements: restrict the site to these elements (None: any element of the right kind).
        coordination: coordination number typical of the site, when well defined.
    """

    role: str
    count: int
    kind: SiteKind
    oxidation_states: tuple[int, ...] = ()
    elements: tuple[str, ...] | None = None
    coordination: int | None = None


@dataclass(frozen=True)
class FamilyCard:
    """A crystal family: formula template, site chemistry, symmetry and prototypes."""

    key: str
    name: str
    aliases: tuple[str, ...]
    sites: tuple[SiteSpec, ...]
    space_groups: tuple[int, ...]
    default_anions: tuple[str, ...] = ()
    oqmd_prototypes: tuple[str, ...] = ()
    aflow_prototypes: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    notes: str = ""
    intermetallic: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def ratio(self) -> list[int]:
        """Atom counts per formula unit, sorted ascending (how :class:`Request` stores ratios)."""
        return sorted(s.count for s in self.sites)

    @property
    def template(self) -> str:
        """Formula template such as ``A B2 X4``."""
        return " ".join(f"{s.role}{s.count if s.count > 1 else ''}" for s in self.sites)


_CHALCOGEN_OR_HALIDE = ("O", "S", "Se", "Te", "F", "Cl", "Br", "I")


def _cards() -> list[FamilyCard]:
    return [
        FamilyCard(
            key="perovskite", name="perovskite (ABX3)",
            aliases=("perovskite", "perovskites", "abx3", "abo3", "cubic perovskite", "cati o3 structure"),
            sites=(SiteSpec("A", 1, "cation", (1, 2, 3), coordination=12),
                   SiteSpec("B", 1, "cation", (1, 2, 3, 4, 5), coordination=6),
                   SiteSpec("X", 3, "anion", (-2, -1), coordination=2)),
            space_groups=(221, 62, 167, 140, 127, 99, 74),
            default_anions=("O", "F", "Cl", "Br", "I"),
            oqmd_prototypes=("ABC3_1_a_b_c_221",),
            aflow_prototypes=("AB3C_cP5_221_a_c_b", "AB3C_oP20_62_c_cd_a"),
            examples=("SrTiO3", "CaTiO3", "BaTiO3", "KMgF3", "CsPbI3", "LaAlO3"),
            notes="corner-sharing BX6 octahedra with A in the 12-fold cavity; Goldschmidt t in 0.8-1.05",
        ),
        FamilyCard(
            key="double_perovskite", name="double perovskite (A2BB'X6)",
            aliases=("double perovskite", "double perovskites", "a2bb'x6", "a2bb'o6", "ordered perovskite",
                     "halide double perovskite"),
            sites=(SiteSpec("A", 2, "cation", (1, 2, 3), coordination=12),
                   SiteSpec("B", 1, "cation", (1, 2, 3, 4), coordination=6),
                   SiteSpec("B'", 1, "cation", (3, 4, 5, 6, 7), coordination=6),
                   SiteSpec("X", 6, "anion", (-2, -1), coordination=2)),
            space_groups=(225, 14, 148, 87),
            default_anions=("O", "F", "Cl", "Br", "I"),
            oqmd_prototypes=("ABC2D6_1_a_b_c_e_225",),
            examples=("Sr2FeMoO6", "Ba2MgWO6", "Cs2AgBiBr6", "Cs2AgInCl6"),
            notes="rock-salt ordering of B and B' octahedra; Fm-3m when untilted",
        ),
        FamilyCard(
            key="spinel", name="spinel (AB2X4)",
            aliases=("spinel", "spinels", "ab2o4", "ab2x4", "inverse spinel", "normal spinel", "thiospinel"),
            sites=(SiteSpec("A", 1, "cation", (2, 4), coordination=4),
                   SiteSpec("B", 2, "cation", (2, 3), coordination=6),
                   SiteSpec("X", 4, "anion", (-2,), coordination=4)),
            space_groups=(227, 141, 74, 216),
            default_anions=("O", "S", "Se", "Te"),
            oqmd_prototypes=("AB2C4_2_a_d_e_227",),
            aflow_prototypes=("A2BC4_cF56_227_d_a_e",),
            examples=("MgAl2O4", "ZnFe2O4", "Fe3O4", "CoCr2S4", "Mg2TiO4"),
            notes="cubic close-packed anions; A tetrahedral, B octahedral (inverse: A swaps with half of B)",
        ),
        FamilyCard(
            key="pyrochlore", name="pyrochlore (A2B2X7)",
            aliases=("pyrochlore", "pyrochlores", "a2b2o7", "a2b2x7"),
            sites=(SiteSpec("A", 2, "cation", (2, 3), coordination=8),
                   SiteSpec("B", 2, "cation", (4, 5), coordination=6),
                   SiteSpec("X", 7, "anion", (-2,), coordination=4)),
            space_groups=(227,),
            default_anions=("O",),
            oqmd_prototypes=("A2B2C7_2_c_d_af_227",),
            examples=("Gd2Ti2O7", "Y2Ti2O7", "La2Zr2O7", "Cd2Nb2O7"),
            notes="Fd-3m; stable for A/B radius ratio about 1.46-1.78",
        ),
        FamilyCard(
            key="elpasolite", name="elpasolite (A2BB'X6)",
            aliases=("elpasolite", "elpasolites", "k2naalf6", "cryolite-like"),
            sites=(SiteSpec("A", 2, "cation", (1,), coordination=12),
                   SiteSpec("B", 1, "cation", (1,), coordination=6),
                   SiteSpec("B'", 1, "cation", (3,), coordination=6),
                   SiteSpec("X", 6, "anion", (-1,), coordination=2)),
            space_groups=(225,),
            default_anions=("F", "Cl", "Br", "I"),
            oqmd_prototypes=("ABC2D6_1_a_b_c_e_225",),
            examples=("K2NaAlF6", "Cs2NaYCl6", "Cs2AgBiBr6", "Rb2KScF6"),
            notes="halide double perovskite A(I)2 B(I) B'(III) X6, Fm-3m",
        ),
        FamilyCard(
            key="rocksalt", name="rocksalt (AX)",
            aliases=("rocksalt", "rock salt", "rock-salt", "nacl structure", "halite", "b1"),
            sites=(SiteSpec("A", 1, "cation", (1, 2, 3), coordination=6),
                   SiteSpec("X", 1, "anion", (-1, -2, -3), coordination=6)),
            space_groups=(225,),
            default_anions=("O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N"),
            oqmd_prototypes=("AB_1_a_b_225",),
            aflow_prototypes=("AB_cF8_225_a_b",),
            examples=("NaCl", "MgO", "LiF", "PbS", "TiN"),
        ),
        FamilyCard(
            key="fluorite", name="fluorite (AX2)",
            aliases=("fluorite", "fluorites", "caf2 structure", "c1"),
            sites=(SiteSpec("A", 1, "cation", (2, 4), coordination=8),
                   SiteSpec("X", 2, "anion", (-1, -2), coordination=4)),
            space_groups=(225,),
            default_anions=("F", "O", "Cl"),
            oqmd_prototypes=("AB2_1_a_c_225",),
            aflow_prototypes=("AB2_cF12_225_a_c",),
            examples=("CaF2", "CeO2", "ZrO2", "UO2", "SrCl2"),
        ),
        FamilyCard(
            key="rutile", name="rutile (AX2)",
            aliases=("rutile", "rutiles", "tio2 structure", "c4"),
            sites=(SiteSpec("A", 1, "cation", (2, 4), coordination=6),
                   SiteSpec("X", 2, "anion", (-1, -2), coordination=3)),
            space_groups=(136,),
            default_anions=("O", "F"),
            oqmd_prototypes=("AB2_2_a_f_136",),
            aflow_prototypes=("A2B_tP6_136_f_a",),
            examples=("TiO2", "SnO2", "MgF2", "RuO2", "VO2"),
        ),
        FamilyCard(
            key="zincblende", name="zincblende (AX)",
            aliases=("zincblende", "zinc blende", "zinc-blende", "sphalerite", "b3"),
            sites=(SiteSpec("A", 1, "cation", (1, 2, 3), coordination=4),
                   SiteSpec("X", 1, "anion", (-1, -2, -3), coordination=4)),
            space_groups=(216,),
            default_anions=("S", "Se", "Te", "N", "P", "As", "Cl", "Br", "I"),
            oqmd_prototypes=("AB_1_a_c_216",),
            aflow_prototypes=("AB_cF8_216_c_a",),
            examples=("ZnS", "GaAs", "CdTe", "CuCl", "InP"),
        ),
        FamilyCard(
            key="wurtzite", name="wurtzite (AX)",
            aliases=("wurtzite", "wurtzites", "b4"),
            sites=(SiteSpec("A", 1, "cation", (1, 2, 3), coordination=4),
                   SiteSpec("X", 1, "anion", (-1, -2, -3), coordination=4)),
            space_groups=(186,),
            default_anions=("O", "S", "Se", "Te", "N"),
            oqmd_prototypes=("AB_2_b_b_186",),
            aflow_prototypes=("AB_hP4_186_b_b",),
            examples=("ZnO", "GaN", "AlN", "CdSe", "BeO"),
        ),
        FamilyCard(
            key="heusler", name="full Heusler (X2YZ)",
            aliases=("heusler", "full heusler", "full-heusler", "heusler alloy", "heusler compound", "l21"),
            sites=(SiteSpec("X", 2, "metal", elements=("Mn", "Fe", "Co", "Ni", "Cu", "Ru", "Rh", "Pd", "Ag", "Ir", "Pt", "Au")),
                   SiteSpec("Y", 1, "metal", elements=("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Y", "Zr", "Nb", "Hf", "Ta", "Li", "Mg")),
                   SiteSpec("Z", 1, "metal", elements=("Al", "Ga", "In", "Si", "Ge", "Sn", "Sb", "Pb", "Bi", "Zn", "Mg"))),
            space_groups=(225, 216),
            intermetallic=True,
            oqmd_prototypes=("ABC2_1_a_b_c_225",),
            aflow_prototypes=("AB2C_cF16_225_a_c_b",),
            examples=("Cu2MnAl", "Co2MnSi", "Ni2MnGa", "Fe2VAl"),
            notes="L21, Fm-3m; Slater-Pauling valence count near 24 favours half-metals",
        ),
        FamilyCard(
            key="half_heusler", name="half-Heusler (XYZ)",
            aliases=("half-heusler", "half heusler", "halfheusler", "c1b", "semi-heusler"),
            sites=(SiteSpec("X", 1, "metal", elements=("Li", "Mg", "Sc", "Ti", "V", "Y", "Zr", "Nb", "Hf", "Ta", "Lu", "La", "Er", "Gd")),
                   SiteSpec("Y", 1, "metal", elements=("Mn", "Fe", "Co", "Ni", "Cu", "Ru", "Rh", "Pd", "Ir", "Pt", "Au", "Ag")),
                   SiteSpec("Z", 1, "metal", elements=("Al", "Ga", "In", "Si", "Ge", "Sn", "Pb", "P", "As", "Sb", "Bi"))),
            space_groups=(216,),
            intermetallic=True,
            oqmd_prototypes=("ABC_1_a_b_c_216",),
            aflow_prototypes=("ABC_cF12_216_b_c_a",),
            examples=("TiNiSn", "ZrNiSn", "NbFeSb", "ScPtBi", "LiZnAs"),
            notes="C1b, F-43m; 8 or 18 valence electrons give semiconductors",
        ),
    ]


FAMILIES: dict[str, FamilyCard] = {card.key: card for card in _cards()}


def get_family(key: str) -> FamilyCard:
    """Return the card for ``key``; a clear error lists the known families."""
    try:
        return FAMILIES[key]
    except KeyError:
        raise UsageError(
            f"unknown crystal family {key!r}; known families: {', '.join(sorted(FAMILIES))}"
        ) from None
