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
    "arsenide": (("As",), -3),
    "antimonide": (("Sb",), -3),
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


#: Element groups used to restrict sites (intermetallic sites and a few ionic ones).
_LANTHANIDES = ("La", "Ce", "Pr", "Nd", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")
_CHALCOGENS = ("S", "Se", "Te")
_PNICTOGENS = ("P", "As", "Sb", "Bi")


def _cards() -> list[FamilyCard]:
    # The first six cards are the examples a parse error names; keep them first. A formula template
    # word such as "AB2O4" resolves to the first ionic card with those site counts, so a family
    # sharing counts with an earlier card (inverse spinel, ilmenite) must come after it.
    return [
        FamilyCard(
            key="perovskite", name="perovskite (ABX3)",
            aliases=("perovskite", "perovskites", "abx3", "abo3", "cubic perovskite", "catio3 structure",
                     "catio3 type", "distorted perovskite", "orthorhombic perovskite", "tetragonal perovskite",
                     "rhombohedral perovskite", "gdfeo3 type"),
            sites=(SiteSpec("A", 1, "cation", (1, 2, 3), coordination=12),
                   SiteSpec("B", 1, "cation", (1, 2, 3, 4, 5), coordination=6),
                   SiteSpec("X", 3, "anion", (-2, -1), coordination=2)),
            space_groups=(221, 62, 167, 140, 127, 99, 74),
            default_anions=("O", "F", "Cl", "Br", "I"),
            oqmd_prototypes=("ABC3_1_a_b_c_221", "ABC3_4_a_c_cd_62", "ABC3_2_b_c_ah_140"),
            aflow_prototypes=("AB3C_cP5_221_a_c_b", "AB3C_oP20_62_c_cd_a"),
            examples=("SrTiO3", "CaTiO3", "BaTiO3", "KMgF3", "CsPbI3", "LaAlO3", "GdFeO3"),
            notes="corner-sharing BX6 octahedra with A in the 12-fold cavity; Goldschmidt t in 0.8-1.05. "
                  "Cubic Pm-3m (SrTiO3) or tilted: orthorhombic Pnma (GdFeO3, CaTiO3), tetragonal I4/mcm, "
                  "rhombohedral R-3c (LaAlO3)",
        ),
        FamilyCard(
            key="double_perovskite", name="double perovskite (A2BB'X6)",
            aliases=("double perovskite", "double perovskites", "a2bb'x6", "a2bb'o6", "ordered perovskite",
                     "halide double perovskite", "b-site ordered perovskite"),
            sites=(SiteSpec("A", 2, "cation", (1, 2, 3), coordination=12),
                   SiteSpec("B", 1, "cation", (1, 2, 3, 4), coordination=6),
                   SiteSpec("B'", 1, "cation", (3, 4, 5, 6, 7), coordination=6),
                   SiteSpec("X", 6, "anion", (-2, -1), coordination=2)),
            space_groups=(225, 14, 148, 87),
            default_anions=("O", "F", "Cl", "Br", "I"),
            oqmd_prototypes=("ABC2D6_1_a_b_c_e_225", "ABC2D6_2_a_d_e_e3_14", "ABC2D6_1_a_b_d_eh_87"),
            examples=("Sr2FeMoO6", "Ba2MgWO6", "Cs2AgBiBr6", "Cs2AgInCl6", "Sr2CrReO6"),
            notes="rock-salt ordering of B and B' octahedra; Fm-3m when untilted, P21/n (a-a-b+) and I4/m "
                  "when tilted",
        ),
        FamilyCard(
            key="spinel", name="spinel (AB2X4)",
            aliases=("spinel", "spinels", "ab2o4", "ab2x4", "normal spinel", "thiospinel", "mgal2o4 type",
                     "mgal2o4 structure", "h1_1"),
            sites=(SiteSpec("A", 1, "cation", (2, 4), coordination=4),
                   SiteSpec("B", 2, "cation", (2, 3), coordination=6),
                   SiteSpec("X", 4, "anion", (-2,), coordination=4)),
            space_groups=(227, 141, 74, 216),
            default_anions=("O", "S", "Se", "Te"),
            oqmd_prototypes=("AB2C4_2_a_d_e_227",),
            aflow_prototypes=("A2BC4_cF56_227_d_a_e",),
            examples=("MgAl2O4", "ZnFe2O4", "CoAl2O4", "ZnCr2O4", "CoCr2S4", "Ni2GeO4"),
            notes="cubic close-packed anions; A tetrahedral, B octahedral (2-3 spinels such as MgAl2O4, and "
                  "2-4 spinels with A4+ such as Ni2GeO4). Fe3O4 and Co3O4 are spinels with one element on "
                  "both cation sites; inverse spinels have their own card",
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
            examples=("Gd2Ti2O7", "Y2Ti2O7", "La2Zr2O7", "Cd2Nb2O7", "Dy2Ti2O7"),
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
            aliases=("rocksalt", "rock salt", "rock-salt", "nacl structure", "nacl type", "halite", "b1"),
            sites=(SiteSpec("A", 1, "cation", (1, 2, 3), coordination=6),
                   SiteSpec("X", 1, "anion", (-1, -2, -3), coordination=6)),
            space_groups=(225,),
            default_anions=("O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N"),
            oqmd_prototypes=("AB_1_a_b_225",),
            aflow_prototypes=("AB_cF8_225_a_b",),
            examples=("NaCl", "MgO", "LiF", "PbS", "TiN"),
            notes="Fm-3m; both ions octahedral (two interpenetrating fcc lattices)",
        ),
        FamilyCard(
            key="fluorite", name="fluorite (AX2)",
            aliases=("fluorite", "fluorites", "caf2 structure", "caf2 type", "c1"),
            sites=(SiteSpec("A", 1, "cation", (2, 4), coordination=8),
                   SiteSpec("X", 2, "anion", (-1, -2), coordination=4)),
            space_groups=(225,),
            default_anions=("F", "O", "Cl"),
            oqmd_prototypes=("AB2_1_a_c_225",),
            aflow_prototypes=("AB2_cF12_225_a_c",),
            examples=("CaF2", "CeO2", "ZrO2", "UO2", "SrCl2", "ThO2", "BaF2"),
            notes="Fm-3m; cations fcc in 8-fold cubes, anions in all tetrahedral holes (ZrO2 in its cubic, "
                  "stabilised form)",
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
            notes="P42/mnm; edge-sharing AX6 octahedral chains along c (VO2 above its 340 K transition)",
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
            notes="F-43m; both ions tetrahedral, cubic (ABC) stacking of the diamond-like network",
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
            notes="P63mc; both ions tetrahedral, hexagonal (AB) stacking",
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
            examples=("TiNiSn", "ZrNiSn", "NbFeSb", "ScPtBi", "TiCoSb", "MgAgAs"),
            notes="C1b, F-43m; 8 or 18 valence electrons give semiconductors (the 8-electron Nowotny-Juza "
                  "phases such as LiZnAs take the same structure)",
        ),
        # -- perovskite relatives ------------------------------------------------------------------
        FamilyCard(
            key="antiperovskite", name="antiperovskite (X3BA)",
            aliases=("antiperovskite", "antiperovskites", "anti-perovskite", "anti perovskite",
                     "li3ocl type", "ca3asn type"),
            sites=(SiteSpec("X", 3, "cation", (1, 2), coordination=6),
                   SiteSpec("B", 1, "anion", (-2, -3), elements=("O", "N"), coordination=6),
                   SiteSpec("A", 1, "anion", (-1, -3, -4),
                            elements=("Cl", "Br", "I", "P", "As", "Sb", "Bi", "Ge", "Sn", "Pb"), coordination=12)),
            space_groups=(221, 62),
            default_anions=("O", "N"),
            oqmd_prototypes=("ABC3_1_a_b_c_221", "ABC3_4_a_c_cd_62"),
            aflow_prototypes=("AB3C_cP5_221_a_c_b",),
            examples=("Li3OCl", "Li3OBr", "Na3OCl", "Ca3AsN", "Ca3PN", "Ca3SnO", "Sr3SnO"),
            notes="perovskite with cations and anions swapped: B anion (O2-, N3-) at the centre of an X6 "
                  "cation octahedron, A anion (halide, pnictide or tetrelide) in the 12-fold cavity; metallic "
                  "antiperovskites such as Mn3GaN, Mn3NiN are outside this ionic template",
        ),
        FamilyCard(
            key="ruddlesden_popper", name="Ruddlesden-Popper, n=1 (A2BX4)",
            aliases=("ruddlesden-popper", "ruddlesden popper", "ruddlesden-popper phase", "k2nif4", "k2nif4 type",
                     "k2nif4 structure", "a2bo4", "a2bx4", "n=1 ruddlesden-popper"),
            sites=(SiteSpec("A", 2, "cation", (1, 2, 3), coordination=9),
                   SiteSpec("B", 1, "cation", (2, 3, 4), coordination=6),
                   SiteSpec("X", 4, "anion", (-1, -2))),
            space_groups=(139, 64),
            default_anions=("O", "F", "Cl"),
            oqmd_prototypes=("AB2C4_1_a_e_ce_139", "AB2C4_2_a_f_ef_64"),
            aflow_prototypes=("AB2C4_tI14_139_a_e_ce",),
            examples=("K2NiF4", "Sr2RuO4", "La2CuO4", "La2NiO4", "Sr2TiO4", "K2MgF4"),
            notes="K2NiF4 type, I4/mmm: single perovskite layers of corner-sharing BX6 octahedra separated by "
                  "rock-salt AX layers; tilted variants are orthorhombic (La2CuO4, Cmce). Higher members "
                  "A(n+1)B(n)X(3n+1) (Sr3Ti2O7, n=2) have other ratios",
        ),
        # -- spinel relatives and other close-packed oxides -------------------------------------------
        FamilyCard(
            key="inverse_spinel", name="inverse spinel (B(AB)X4)",
            aliases=("inverse spinel", "inverse spinels", "inverse-spinel"),
            sites=(SiteSpec("A", 1, "cation", (2, 4), coordination=6),
                   SiteSpec("B", 2, "cation", (2, 3)),
                   SiteSpec("X", 4, "anion", (-2,), coordination=4)),
            space_groups=(227, 91, 74),
            default_anions=("O",),
            oqmd_prototypes=("AB2C4_2_a_d_e_227", "AB2C4_4_a_bc_d2_91"),
            aflow_prototypes=("A2BC4_cF56_227_d_a_e",),
            examples=("NiFe2O4", "CoFe2O4", "MgFe2O4", "CuFe2O4", "Mg2TiO4", "Zn2TiO4", "Fe2TiO4"),
            notes="spinel lattice with A on octahedral sites and B split between the tetrahedral and the "
                  "other octahedral sites; cubic Fd-3m when disordered, P4122 when the octahedral cations "
                  "order (Mg2TiO4, Zn2TiO4). Fe3O4 is inverse with Fe2+ on A",
        ),
        FamilyCard(
            key="olivine", name="olivine (M2TX4)",
            aliases=("olivine", "olivines", "forsterite", "fayalite", "mg2sio4 type", "olivine-type"),
            sites=(SiteSpec("M", 2, "cation", (2, 3), coordination=6),
                   SiteSpec("T", 1, "cation", (2, 4), coordination=4),
                   SiteSpec("X", 4, "anion", (-2,), coordination=4)),
            space_groups=(62,),
            default_anions=("O", "S"),
            oqmd_prototypes=("AB2C4_4_c_ac_c2d_62",),
            examples=("Mg2SiO4", "Fe2SiO4", "Mn2SiO4", "Co2SiO4", "Ni2SiO4", "Mg2GeO4", "BeAl2O4"),
            notes="Pnma; hexagonal close-packed anions, M on two octahedral sites (M1, M2), T tetrahedral. "
                  "Chrysoberyl BeAl2O4 is isostructural; LiFePO4 (triphylite) is the ordered quaternary variant",
        ),
        FamilyCard(
            key="garnet", name="garnet (A3B2C3X12)",
            aliases=("garnet", "garnets", "a3b2c3o12", "a3b2c3x12", "grossular", "pyrope", "almandine",
                     "andradite"),
            sites=(SiteSpec("A", 3, "cation", (1, 2, 3), coordination=8),
                   SiteSpec("B", 2, "cation", (2, 3, 4), coordination=6),
                   SiteSpec("C", 3, "cation", (1, 3, 4, 5), coordination=4),
                   SiteSpec("X", 12, "anion", (-2, -1), coordination=4)),
            space_groups=(230,),
            default_anions=("O", "F"),
            oqmd_prototypes=("A2B3C3D12_4_a_c_d_h_230",),
            examples=("Ca3Al2Si3O12", "Mg3Al2Si3O12", "Fe3Al2Si3O12", "Mn3Al2Si3O12", "Ca3Fe2Si3O12",
                      "Ca3Cr2Si3O12"),
            notes="Ia-3d; A dodecahedral (8-fold), B octahedral, C tetrahedral. Y3Al5O12 (YAG), Y3Fe5O12 "
                  "(YIG) and Gd3Ga5O12 (GGG) are garnets with one element on B and C",
        ),
        FamilyCard(
            key="corundum", name="corundum (A2X3)",
            aliases=("corundum", "corundums", "corundum-type", "al2o3 structure", "alpha-al2o3 structure",
                     "d5_1"),
            sites=(SiteSpec("A", 2, "cation", (3,), coordination=6),
                   SiteSpec("X", 3, "anion", (-2,), coordination=4)),
            space_groups=(167,),
            default_anions=("O",),
            oqmd_prototypes=("A2B3_2_c_e_167",),
            aflow_prototypes=("A2B3_hR10_167_c_e",),
            examples=("Al2O3", "Cr2O3", "Fe2O3", "V2O3", "Ti2O3"),
            notes="R-3c; hexagonal close-packed O with cations in two thirds of the octahedral holes "
                  "(Fe2O3 as hematite)",
        ),
        FamilyCard(
            key="ilmenite", name="ilmenite (ABX3)",
            aliases=("ilmenite", "ilmenites", "fetio3 structure", "fetio3 type", "geikielite", "pyrophanite"),
            sites=(SiteSpec("A", 1, "cation", (1, 2), coordination=6),
                   SiteSpec("B", 1, "cation", (4, 5), coordination=6),
                   SiteSpec("X", 3, "anion", (-2,), coordination=4)),
            space_groups=(148,),
            default_anions=("O",),
            oqmd_prototypes=("ABC3_2_c_c_f_148",),
            aflow_prototypes=("AB3C_hR10_148_c_f_c",),
            examples=("FeTiO3", "MgTiO3", "MnTiO3", "NiTiO3", "CoTiO3", "NaSbO3"),
            notes="R-3; ordered corundum: A and B octahedra in alternating layers along c (LiNbO3, R3c, "
                  "orders them within each layer instead)",
        ),
        # -- binary structure types ------------------------------------------------------------------
        FamilyCard(
            key="cscl", name="CsCl (AX)",
            aliases=("cscl", "cscl type", "cscl structure"),
            sites=(SiteSpec("A", 1, "cation", (1,), coordination=8),
                   SiteSpec("X", 1, "anion", (-1,), coordination=8)),
            space_groups=(221,),
            default_anions=("Cl", "Br", "I"),
            oqmd_prototypes=("AB_1_a_b_221",),
            aflow_prototypes=("AB_cP2_221_b_a",),
            examples=("CsCl", "CsBr", "CsI", "TlCl", "TlBr"),
            notes="Pm-3m; both ions 8-fold (cubic), for large cations (rA/rX above about 0.73). The same "
                  "structure as an ordered alloy is the B2 card",
        ),
        FamilyCard(
            key="antifluorite", name="antifluorite (A2X)",
            aliases=("antifluorite", "antifluorites", "anti-fluorite", "anti fluorite", "li2o structure",
                     "li2o type", "na2o type"),
            sites=(SiteSpec("A", 2, "cation", (1, 2), coordination=4),
                   SiteSpec("X", 1, "anion", (-2, -4), coordination=8)),
            space_groups=(225,),
            default_anions=("O", "S", "Se", "Te"),
            oqmd_prototypes=("AB2_1_a_c_225",),
            aflow_prototypes=("AB2_cF12_225_a_c",),
            examples=("Li2O", "Na2O", "K2O", "Li2S", "Na2S", "K2S", "Mg2Si", "Be2C"),
            notes="Fm-3m; fluorite with cation and anion sites swapped: A in all tetrahedral holes of an "
                  "fcc anion lattice (alkali chalcogenides; Mg2Si with Si4-)",
        ),
        FamilyCard(
            key="anatase", name="anatase (AX2)",
            aliases=("anatase", "anatase-type", "anatase tio2"),
            sites=(SiteSpec("A", 1, "cation", (4,), coordination=6),
                   SiteSpec("X", 2, "anion", (-2,), coordination=3)),
            space_groups=(141,),
            default_anions=("O",),
            oqmd_prototypes=("AB2_2_a_e_141",),
            aflow_prototypes=("A2B_tI12_141_e_a",),
            examples=("TiO2",),
            notes="I41/amd; TiO6 octahedra sharing four edges. A TiO2 polymorph (with rutile and brookite); "
                  "the anonymous OQMD label is shared with ThSi2-type silicides",
        ),
        FamilyCard(
            key="nias", name="NiAs (AX)",
            aliases=("nias", "nias type", "nias structure", "nickel arsenide", "nickeline", "niccolite",
                     "b8_1", "b81"),
            sites=(SiteSpec("A", 1, "cation", (2, 3), coordination=6),
                   SiteSpec("X", 1, "anion", (-2, -3), elements=(*_CHALCOGENS, *_PNICTOGENS), coordination=6)),
            space_groups=(194,),
            default_anions=("S", "Se", "Te", "As", "Sb"),
            oqmd_prototypes=("AB_2_a_c_194",),
            aflow_prototypes=("AB_hP4_194_c_a",),
            examples=("NiAs", "FeS", "CoS", "MnTe", "CrSb", "NiSb", "CoSb"),
            notes="P63/mmc; hexagonal close-packed X with A in all octahedral holes (face-sharing chains, "
                  "metallic A-A contacts), X trigonal prismatic. FeS as the high-temperature form of "
                  "troilite/pyrrhotite",
        ),
        FamilyCard(
            key="cdi2", name="CdI2 (AX2, 1T)",
            aliases=("cdi2", "cdi2 type", "cdi2 structure", "1t", "1t phase", "1t polytype"),
            sites=(SiteSpec("A", 1, "cation", (2, 4), coordination=6),
                   SiteSpec("X", 2, "anion", (-1, -2), coordination=3)),
            space_groups=(164,),
            default_anions=("S", "Se", "Te", "Cl", "Br", "I"),
            oqmd_prototypes=("AB2_1_a_d_164",),
            aflow_prototypes=("AB2_hP3_164_a_d",),
            examples=("CdI2", "MgI2", "PbI2", "TiS2", "ZrS2", "SnS2", "PtSe2"),
            notes="P-3m1; hexagonal close-packed X with A in every octahedral hole of alternate layers, "
                  "van der Waals gaps between the AX2 sheets (1T transition-metal dichalcogenides)",
        ),
        FamilyCard(
            key="mos2", name="MoS2 (AX2, 2H)",
            aliases=("mos2", "mos2 type", "mos2 structure", "molybdenite", "2h", "2h phase", "2h polytype"),
            sites=(SiteSpec("A", 1, "cation", (4,), elements=("Mo", "W", "Nb", "Ta"), coordination=6),
                   SiteSpec("X", 2, "anion", (-2,), elements=_CHALCOGENS, coordination=3)),
            space_groups=(194, 160),
            default_anions=("S", "Se", "Te"),
            oqmd_prototypes=("AB2_2_c_f_194", "AB2_1_a_a2_160"),
            aflow_prototypes=("AB2_hP6_194_c_f",),
            examples=("MoS2", "WS2", "MoSe2", "WSe2", "MoTe2"),
            notes="P63/mmc (2H; R3m for the 3R stacking); A trigonal prismatic between two X layers, "
                  "van der Waals gaps between the sheets",
        ),
        FamilyCard(
            key="pyrite", name="pyrite (AX2)",
            aliases=("pyrite", "pyrites", "fes2 type", "fes2 structure", "pyrite-type"),
            sites=(SiteSpec("A", 1, "cation", (2,), elements=("Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Cd", "Ru", "Os"),
                            coordination=6),
                   SiteSpec("X", 2, "anion", (-1,), elements=_CHALCOGENS, coordination=4)),
            space_groups=(205,),
            default_anions=("S", "Se", "Te"),
            oqmd_prototypes=("AB2_4_a_c_205",),
            aflow_prototypes=("AB2_cP12_205_a_c",),
            examples=("FeS2", "CoS2", "NiS2", "MnS2", "RuS2", "OsS2"),
            notes="Pa-3; rock-salt arrangement of A2+ and X2(2-) dumbbells (persulfide, X formally -1); "
                  "marcasite is the orthorhombic FeS2 polymorph",
        ),
        FamilyCard(
            key="skutterudite", name="skutterudite (AX3)",
            aliases=("skutterudite", "skutterudites", "coas3 type", "cosb3 type", "unfilled skutterudite"),
            sites=(SiteSpec("A", 1, "cation", (3,), elements=("Co", "Rh", "Ir", "Ni"), coordination=6),
                   SiteSpec("X", 3, "anion", (-1,), elements=("P", "As", "Sb"), coordination=4)),
            space_groups=(204,),
            default_anions=("P", "As", "Sb"),
            oqmd_prototypes=("AB3_4_c_g_204",),
            aflow_prototypes=("A3B_cI32_204_g_c",),
            examples=("CoAs3", "CoSb3", "CoP3", "RhSb3", "IrSb3", "RhP3"),
            notes="Im-3; corner-sharing AX6 octahedra with square X4(4-) rings (X formally -1) and an empty "
                  "icosahedral cage that filled skutterudites (LaFe4Sb12) occupy",
        ),
        # -- ternary structure types -----------------------------------------------------------------
        FamilyCard(
            key="delafossite", name="delafossite (ABX2)",
            aliases=("delafossite", "delafossites", "cufeo2 type", "cufeo2 structure", "abo2"),
            sites=(SiteSpec("A", 1, "cation", (1,), elements=("Cu", "Ag", "Pd", "Pt"), coordination=2),
                   SiteSpec("B", 1, "cation", (3,), coordination=6),
                   SiteSpec("X", 2, "anion", (-2,), coordination=4)),
            space_groups=(166, 194),
            default_anions=("O",),
            oqmd_prototypes=("ABC2_1_a_b_c_166",),
            examples=("CuFeO2", "CuAlO2", "CuCrO2", "CuGaO2", "PdCoO2", "PtCoO2", "AgNiO2"),
            notes="R-3m (3R) or P63/mmc (2H); layers of edge-sharing BO6 octahedra linked by linearly "
                  "coordinated A+. The anonymous OQMD labels are shared with alpha-NaFeO2 (3R) and the 211 "
                  "MAX phases (2H, ABC2_2_a_c_f_194)",
        ),
        FamilyCard(
            key="alpha_nafeo2", name="layered alpha-NaFeO2 (ABX2)",
            aliases=("alpha-nafeo2", "α-nafeo2", "nafeo2 type", "nafeo2 structure", "layered rocksalt",
                     "layered rock-salt", "layered rock salt", "o3 type", "licoo2 type", "licoo2 structure",
                     "caswellsilverite"),
            sites=(SiteSpec("A", 1, "cation", (1,), coordination=6),
                   SiteSpec("B", 1, "cation", (3,), coordination=6),
                   SiteSpec("X", 2, "anion", (-2,), coordination=6)),
            space_groups=(166,),
            default_anions=("O", "S"),
            oqmd_prototypes=("ABC2_1_a_b_c_166",),
            aflow_prototypes=("ABC2_hR4_166_a_b_c",),
            examples=("LiCoO2", "LiNiO2", "NaCrO2", "NaFeO2", "LiVO2", "NaCrS2"),
            notes="R-3m; rock salt with A and B ordered in alternating (111) octahedral layers (O3 stacking "
                  "of layered battery cathodes; NaFeO2 as its alpha form)",
        ),
        FamilyCard(
            key="chalcopyrite", name="chalcopyrite (ABX2)",
            aliases=("chalcopyrite", "chalcopyrites", "cufes2 type", "cufes2 structure", "e1_1"),
            sites=(SiteSpec("A", 1, "cation", (1, 2), elements=("Cu", "Ag", "Zn", "Cd"), coordination=4),
                   SiteSpec("B", 1, "cation", (3, 4), elements=("Al", "Ga", "In", "Fe", "Si", "Ge", "Sn"),
                            coordination=4),
                   SiteSpec("X", 2, "anion", (-2, -3), elements=("S", "Se", "Te", "P", "As"), coordination=4)),
            space_groups=(122,),
            default_anions=("S", "Se", "Te", "P", "As"),
            oqmd_prototypes=("ABC2_2_a_b_d_122",),
            aflow_prototypes=("ABC2_tI16_122_a_b_d",),
            examples=("CuFeS2", "CuInSe2", "CuGaS2", "CuInS2", "AgGaS2", "ZnGeP2", "CdGeAs2"),
            notes="I-42d; zincblende superstructure with A and B ordered on the cation sites "
                  "(I-III-VI2 and II-IV-V2 semiconductors)",
        ),
        FamilyCard(
            key="kesterite", name="kesterite / stannite (A2BCX4)",
            aliases=("kesterite", "kesterites", "stannite", "stannites", "czts", "cu2znsns4 type"),
            sites=(SiteSpec("A", 2, "cation", (1,), elements=("Cu", "Ag"), coordination=4),
                   SiteSpec("B", 1, "cation", (2,), elements=("Zn", "Cd", "Hg", "Fe", "Mn", "Co", "Ni"),
                            coordination=4),
                   SiteSpec("C", 1, "cation", (4,), elements=("Si", "Ge", "Sn"), coordination=4),
                   SiteSpec("X", 4, "anion", (-2,), elements=_CHALCOGENS, coordination=4)),
            space_groups=(82, 121),
            default_anions=("S", "Se"),
            oqmd_prototypes=("ABC2D4_1_a_b_d_i_121",),
            aflow_prototypes=("A2BC4D_tI16_121_d_a_i_b",),
            examples=("Cu2ZnSnS4", "Cu2ZnSnSe4", "Cu2FeSnS4", "Cu2CdSnS4", "Cu2ZnGeS4", "Ag2ZnSnS4"),
            notes="I2-II-IV-VI4 zincblende superstructures: kesterite (I-4) and stannite (I-42m) differ only "
                  "in how Cu and the II cation order. The prototype labels are stannite-type: neither "
                  "library has a kesterite (I-4) label",
        ),
        # -- intermetallics --------------------------------------------------------------------------
        FamilyCard(
            key="b2", name="B2 (CsCl-type) alloy (AB)",
            aliases=("b2", "b2 alloy", "b2 phase", "b2 intermetallic", "b2-ordered", "beta brass",
                     "beta-brass", "cscl alloy", "cscl-type alloy", "cscl-type intermetallic"),
            sites=(SiteSpec("A", 1, "metal", coordination=8),
                   SiteSpec("B", 1, "metal", coordination=8)),
            space_groups=(221,),
            intermetallic=True,
            oqmd_prototypes=("AB_1_a_b_221",),
            aflow_prototypes=("AB_cP2_221_b_a",),
            examples=("CuZn", "NiAl", "FeAl", "CoAl", "AgMg", "CoTi", "NiTi"),
            notes="Pm-3m; bcc with the two elements ordered on the corner and body-centre sites "
                  "(NiTi as austenite, above its martensitic transition)",
        ),
        FamilyCard(
            key="laves", name="Laves phase (AB2)",
            aliases=("laves", "laves phase", "laves phases", "c15", "c14", "c36", "mgcu2 type", "mgzn2 type",
                     "mgni2 type"),
            sites=(SiteSpec("A", 1, "metal", coordination=16,
                            elements=("Mg", "Ca", "Sr", "Ba", "Sc", "Y", *_LANTHANIDES, "Ti", "Zr", "Hf", "Nb",
                                      "Ta", "Th", "U")),
                   SiteSpec("B", 2, "metal", coordination=12,
                            elements=("Be", "Al", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Mo", "W", "Re",
                                      "Ru", "Rh", "Os", "Ir", "Pt"))),
            space_groups=(227, 194),
            intermetallic=True,
            oqmd_prototypes=("AB2_2_a_d_227", "AB2_4_f_ah_194", "AB2_8_ef_fgh_194"),
            aflow_prototypes=("A2B_cF24_227_d_a", "AB2_hP12_194_f_ah", "AB2_hP24_194_ef_fgh"),
            examples=("MgCu2", "MgZn2", "MgNi2", "ZrV2", "ZrFe2", "TiCr2", "CeFe2", "CaAl2"),
            notes="Frank-Kasper phases with rA/rB near 1.225: cubic C15 (MgCu2, Fd-3m), hexagonal C14 "
                  "(MgZn2) and C36 (MgNi2), P63/mmc",
        ),
        FamilyCard(
            key="thcr2si2", name="ThCr2Si2 (AB2X2)",
            aliases=("thcr2si2", "thcr2si2 type", "thcr2si2 structure", "bafe2as2 type", "122 pnictide",
                     "122 iron pnictide"),
            sites=(SiteSpec("A", 1, "metal",
                            elements=("K", "Rb", "Cs", "Ca", "Sr", "Ba", "Eu", "Y", *_LANTHANIDES, "Th", "U")),
                   SiteSpec("B", 2, "metal",
                            elements=("Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ru", "Rh", "Pd", "Os", "Ir", "Pt")),
                   SiteSpec("X", 2, "metal", elements=("Si", "Ge", "P", "As", "Sb", "Al", "Ga"))),
            space_groups=(139,),
            intermetallic=True,
            oqmd_prototypes=("AB2C2_1_a_d_e_139",),
            examples=("ThCr2Si2", "BaFe2As2", "CeCu2Si2", "URu2Si2", "KFe2As2", "CaFe2As2", "BaMn2As2"),
            notes="I4/mmm; B2X2 layers of edge-sharing BX4 tetrahedra separated by A (the ternary ordered "
                  "variant of BaAl4); the 122 iron-pnictide superconductors and heavy-fermion silicides",
        ),
        FamilyCard(
            key="max_phase", name="MAX phase (M2AX)",
            aliases=("max phase", "max phases", "m2ax", "211 max phase"),
            sites=(SiteSpec("M", 2, "metal", elements=("Sc", "Ti", "V", "Cr", "Mn", "Zr", "Nb", "Mo", "Hf", "Ta")),
                   SiteSpec("A", 1, "metal",
                            elements=("Al", "Si", "P", "S", "Ga", "Ge", "As", "Cd", "In", "Sn", "Tl", "Pb")),
                   SiteSpec("X", 1, "metal", elements=("C", "N"))),
            space_groups=(194,),
            intermetallic=True,
            oqmd_prototypes=("ABC2_2_a_c_f_194",),
            aflow_prototypes=("ABC2_hP8_194_d_a_f",),
            examples=("Ti2AlC", "V2AlC", "Cr2AlC", "Nb2AlC", "Ti2AlN", "Ti2SC", "Zr2SnC"),
            notes="P63/mmc; M6X octahedra (rock-salt-like MX slabs) interleaved with A layers, metallic. "
                  "The card is the 211 member; 312 (Ti3SiC2, OQMD AB2C3_2_b_f_af_194) and 413 (Ti4AlN3, "
                  "AB3C4_2_c_af_ef_194) have other ratios",
        ),
    ]


FAMILIES: dict[str, FamilyCard] = {card.key: card for card in _cards()}


def get_family(key: str) -> FamilyCard:
    """Return the card for ``key``: a hand-written card, or a card derived from the data for a
    ``type:<name>:<label>`` key (:mod:`genms_pmg.knowledge.prototypes`); a clear error lists the families."""
    if key in FAMILIES:
        return FAMILIES[key]
    if isinstance(key, str) and key.startswith("type:"):
        from genms_pmg.knowledge.prototypes import derived_card

        return derived_card(key)
    raise UsageError(
        f"unknown crystal family {key!r}; known families: {', '.join(sorted(FAMILIES))}, or any structure type "
        "`genms types` lists"
    )


def find_family(key: str | None) -> FamilyCard | None:
    """The card for ``key`` (hand-written or derived), or None when ``key`` is empty."""
    return get_family(key) if key else None
