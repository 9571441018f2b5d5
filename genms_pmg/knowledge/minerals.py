"""Mineral and common names that point at a family card, beyond the names the cards list.

Each entry is textbook fact: the mineral (or the common name) is that compound, and the compound
takes that card's structure. Names the cards already hold as aliases (halite, sphalerite,
forsterite, ...) are not repeated. ``tests/test_retrieval.py`` checks every formula fits its card.
"""

from __future__ import annotations

__all__ = ["MINERALS"]

#: name (lower case) -> (formula, card key)
MINERALS: dict[str, tuple[str, str]] = {
    # perovskite
    "tausonite": ("SrTiO3", "perovskite"),
    "neighborite": ("NaMgF3", "perovskite"),
    "bridgmanite": ("MgSiO3", "perovskite"),
    # elpasolite: cryolite is Na2NaAlF6, a monoclinically distorted elpasolite
    "cryolite": ("Na3AlF6", "elpasolite"),
    # rocksalt
    "table salt": ("NaCl", "rocksalt"),
    "periclase": ("MgO", "rocksalt"),
    "galena": ("PbS", "rocksalt"),
    "sylvite": ("KCl", "rocksalt"),
    "bunsenite": ("NiO", "rocksalt"),
    "manganosite": ("MnO", "rocksalt"),
    "villiaumite": ("NaF", "rocksalt"),
    "altaite": ("PbTe", "rocksalt"),
    "clausthalite": ("PbSe", "rocksalt"),
    # fluorite
    "fluorspar": ("CaF2", "fluorite"),
    "uraninite": ("UO2", "fluorite"),
    "thorianite": ("ThO2", "fluorite"),
    "cerianite": ("CeO2", "fluorite"),
    "ceria": ("CeO2", "fluorite"),
    "thoria": ("ThO2", "fluorite"),
    # rutile
    "cassiterite": ("SnO2", "rutile"),
    "pyrolusite": ("MnO2", "rutile"),
    "stishovite": ("SiO2", "rutile"),
    "sellaite": ("MgF2", "rutile"),
    # zincblende and wurtzite
    "marshite": ("CuI", "zincblende"),
    "nantokite": ("CuCl", "zincblende"),
    "metacinnabar": ("HgS", "zincblende"),
    "zincite": ("ZnO", "wurtzite"),
    "greenockite": ("CdS", "wurtzite"),
    "bromellite": ("BeO", "wurtzite"),
    # spinel and inverse spinel
    "gahnite": ("ZnAl2O4", "spinel"),
    "franklinite": ("ZnFe2O4", "spinel"),
    "chromite": ("FeCr2O4", "spinel"),
    "hercynite": ("FeAl2O4", "spinel"),
    "magnetite": ("Fe3O4", "inverse_spinel"),
    "trevorite": ("NiFe2O4", "inverse_spinel"),
    "magnesioferrite": ("MgFe2O4", "inverse_spinel"),
    "ulvospinel": ("Fe2TiO4", "inverse_spinel"),
    "ulvöspinel": ("Fe2TiO4", "inverse_spinel"),
    "qandilite": ("Mg2TiO4", "inverse_spinel"),
    # olivine
    "tephroite": ("Mn2SiO4", "olivine"),
    "chrysoberyl": ("BeAl2O4", "olivine"),
    # garnet (and the usual acronyms of the synthetic garnets)
    "spessartine": ("Mn3Al2Si3O12", "garnet"),
    "uvarovite": ("Ca3Cr2Si3O12", "garnet"),
    "yag": ("Y3Al5O12", "garnet"),
    "yig": ("Y3Fe5O12", "garnet"),
    "ggg": ("Gd3Ga5O12", "garnet"),
    # corundum
    "sapphire": ("Al2O3", "corundum"),
    "ruby": ("Al2O3", "corundum"),
    "hematite": ("Fe2O3", "corundum"),
    "eskolaite": ("Cr2O3", "corundum"),
    "karelianite": ("V2O3", "corundum"),
    # NiAs, CdI2, MoS2, pyrite
    "breithauptite": ("NiSb", "nias"),
    "berndtite": ("SnS2", "cdi2"),
    "tungstenite": ("WS2", "mos2"),
    "fool's gold": ("FeS2", "pyrite"),
    "cattierite": ("CoS2", "pyrite"),
    "vaesite": ("NiS2", "pyrite"),
    "hauerite": ("MnS2", "pyrite"),
    "laurite": ("RuS2", "pyrite"),
    # ternary types
    "mcconnellite": ("CuCrO2", "delafossite"),
    "roquesite": ("CuInS2", "chalcopyrite"),
    "gallite": ("CuGaS2", "chalcopyrite"),
}
