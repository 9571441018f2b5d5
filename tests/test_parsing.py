"""Tests for the rule-based request parser (genms_pmg.parsing)."""

from __future__ import annotations

import pytest

from genms_pmg.errors import UsageError
from genms_pmg.parsing import parse
from genms_pmg.request import Request, parse_request


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("a cubic perovskite fluoride", "perovskite"),
        ("an elpasolite", "elpasolite"),
        ("a lead-free halide double perovskite", "double_perovskite"),
        ("a half-Heusler compound containing Ni", "half_heusler"),
        ("a half heusler", "half_heusler"),
        ("a Heusler alloy with cobalt and manganese", "heusler"),
        ("some SPINELS", "spinel"),
        ("a rock-salt nitride", "rocksalt"),
        ("a zinc blende selenide", "zincblende"),
        ("a rutile oxide", "rutile"),
        ("a fluorite oxide", "fluorite"),
        ("a wurtzite nitride", "wurtzite"),
        ("an ABO3 compound", "perovskite"),
        ("an AB2O4 compound", "spinel"),
        ("an A2B2O7 compound", "pyrochlore"),
        ("a pyrochlore", "pyrochlore"),
    ],
)
def test_family(text: str, family: str) -> None:
    assert parse(text).family == family


def test_stable_spinel_oxide_with_mg() -> None:
    r = parse("a stable spinel oxide containing Mg")
    assert (r.family, r.required_elements, r.anion_classes, r.stable) == ("spinel", ["Mg"], ["oxide"], True)
    assert r.ignored == []


def test_pyrochlore_oxide_with_ti() -> None:
    r = parse("a pyrochlore oxide containing Ti")
    assert (r.family, r.required_elements, r.anion_classes) == ("pyrochlore", ["Ti"], ["oxide"])


def test_lead_free_halide_double_perovskite() -> None:
    r = parse("a lead-free halide double perovskite")
    assert r.family == "double_perovskite"
    assert r.excluded_elements == ["Pb"] and r.required_elements == []
    assert r.anion_classes == ["halide"]


def test_template_word_sets_anion_class() -> None:
    assert parse("an ABO3 with Sr").anion_classes == ["oxide"]
    assert parse("an ABX3 with Cs").anion_classes == []


@pytest.mark.parametrize(
    ("text", "required"),
    [
        ("a half-Heusler compound containing Ni", ["Ni"]),
        ("a Heusler alloy with cobalt and manganese", ["Co", "Mn"]),
        ("a spinel with magnesium", ["Mg"]),
        ("a Ti-based perovskite", ["Ti"]),
        ("a Ni half-Heusler", ["Ni"]),
        ("a Mg spinel", ["Mg"]),
        ("a titanium pyrochlore", ["Ti"]),
        ("a spinel including Fe and Co", ["Fe", "Co"]),
        ("a perovskite with Mg, Al, and Sr", ["Mg", "Al", "Sr"]),
        ("In-containing zincblende", ["In"]),
        ("a wurtzite with In", ["In"]),
        ("a Co/Ni-based spinel", ["Co", "Ni"]),
        ("a lead halide perovskite", ["Pb"]),
        ("zinc sulfide in the zincblende structure", ["Zn"]),
        ("an oxide of titanium", ["Ti"]),
        ("a rocksalt based on Mg", ["Mg"]),
        ("a spinel containing Fe3+", ["Fe"]),
    ],
)
def test_required_elements(text: str, required: list[str]) -> None:
    assert parse(text).required_elements == required


@pytest.mark.parametrize(
    "text",
    [
        "a perovskite as good as it gets",  # 'as' is not arsenic
        "In perovskites, the B site is octahedral",  # sentence-start 'In' is not indium
        "I want a spinel oxide",  # 'I' is not iodine
        "a spinel oxide and a is not an element",
        "a perovskite like SrTiO3",  # formulas are not read as element lists
    ],
)
def test_english_words_are_not_elements(text: str) -> None:
    r = parse(text)
    assert r.required_elements == [] and r.excluded_elements == []


def test_bare_symbol_after_cue_is_an_element() -> None:
    assert parse("a spinel with As").required_elements == ["As"]
    assert parse("a perovskite containing I").required_elements == ["I"]


@pytest.mark.parametrize(
    ("text", "excluded"),
    [
        ("a perovskite without lead", ["Pb"]),
        ("a Pb-free perovskite", ["Pb"]),
        ("a perovskite with no cobalt", ["Co"]),
        ("No cobalt perovskite", ["Co"]),
        ("a spinel excluding Co and Ni", ["Co", "Ni"]),
        ("a perovskite not containing Pb", ["Pb"]),
        ("a spinel that doesn't contain nickel", ["Ni"]),
        ("a spinel without Pb, Cd or Hg", ["Pb", "Cd", "Hg"]),
        ("a perovskite free of lead", ["Pb"]),
    ],
)
def test_excluded_elements(text: str, excluded: list[str]) -> None:
    r = parse(text)
    assert r.excluded_elements == excluded and r.required_elements == []


def test_required_and_excluded_together() -> None:
    r = parse("a spinel containing Mg and no Co")
    assert r.required_elements == ["Mg"] and r.excluded_elements == ["Co"]


def test_rare_earth_free() -> None:
    for text in ("a spinel free of rare earths", "a rare-earth-free perovskite"):
        r = parse(text)
        assert {"La", "Nd", "Y", "Lu"} <= set(r.excluded_elements)


@pytest.mark.parametrize(
    ("text", "anions"),
    [
        ("a perovskite fluoride", ["fluoride"]),
        ("spinel oxides", ["oxide"]),
        ("a rocksalt chloride", ["chloride"]),
        ("a perovskite iodide or bromide", ["iodide", "bromide"]),
        ("a spinel chalcogenide", ["chalcogenide"]),
        ("a sulfide spinel", ["sulfide"]),
        ("a telluride rocksalt", ["telluride"]),
        ("a selenide wurtzite", ["selenide"]),
        ("a new rocksalt nitride", ["nitride"]),
    ],
)
def test_anion_classes(text: str, anions: list[str]) -> None:
    assert parse(text).anion_classes == anions


@pytest.mark.parametrize(
    ("text", "ratio"),
    [
        ("a metallic compound with atom ratio 1:1:2 containing Fe", [1, 1, 2]),
        ("a pyrochlore with ratio 2:2:7", [2, 2, 7]),
        ("a spinel in a 1:2:4 ratio", [1, 2, 4]),
        ("an oxide with atomic ratio 4 : 2 : 1", [1, 2, 4]),
        ("an oxide with ratio 2:4:8", [1, 2, 4]),  # reduced by the gcd
    ],
)
def test_atom_ratio(text: str, ratio: list[int]) -> None:
    assert parse(text).atom_ratio == ratio


def test_metallic_compound_example() -> None:
    r = parse("a metallic compound with atom ratio 1:1:2 containing Fe")
    assert r.metallic is True and r.required_elements == ["Fe"] and r.family is None


@pytest.mark.parametrize(
    ("text", "sources"),
    [
        ("a new rocksalt nitride not in Materials Project", ["mp"]),
        ("a spinel that isn't in MP", ["mp"]),
        ("a perovskite not in ICSD", ["icsd"]),
        ("a perovskite not in the Materials Project or ICSD", ["mp", "icsd"]),
        ("a novel spinel", ["mp", "icsd"]),
        ("an unknown perovskite oxide", ["mp", "icsd"]),
        ("an undiscovered pyrochlore", ["mp", "icsd"]),
        ("a hypothetical rutile", ["mp", "icsd"]),
    ],
)
def test_novelty(text: str, sources: list[str]) -> None:
    r = parse(text)
    assert r.novel is True and r.novelty_sources == sources
    assert "new" not in r.ignored and "MP" not in r.ignored


def test_not_novel_by_default() -> None:
    r = parse("a perovskite oxide")
    assert r.novel is False and r.novelty_sources == []


@pytest.mark.parametrize(
    ("text", "metallic"),
    [
        ("a metallic oxide", True),
        ("a metal with Fe", True),
        ("a good conductor with Cu", True),
        ("a transition metal oxide perovskite", None),
        ("a metal oxide spinel", None),
        ("a metal halide perovskite", None),
        ("an ionic conductor spinel", None),
        ("an insulating perovskite", False),
        ("a semiconducting half-Heusler", False),
        ("a semiconductor in the zincblende family", False),
        ("a non-metallic spinel", False),
        ("a perovskite oxide", None),
    ],
)
def test_metallic(text: str, metallic: bool | None) -> None:
    assert parse(text).metallic is metallic


@pytest.mark.parametrize(
    ("text", "stable"),
    [
        ("a stable spinel", True),
        ("a thermodynamically stable perovskite", True),
        ("a low-energy rutile", True),
        ("a metastable spinel", False),
        ("an unstable spinel", False),
    ],
)
def test_stable(text: str, stable: bool) -> None:
    assert parse(text).stable is stable


@pytest.mark.parametrize(
    ("text", "max_atoms"),
    [
        ("a perovskite with at most 20 atoms", 20),
        ("a spinel with up to 12 atoms per cell", 12),
        ("a rocksalt with fewer than 30 atoms", 29),
        ("a rutile with no more than 6 atoms in the unit cell", 6),
        ("a rocksalt with 8 atoms or fewer", 8),
        ("a perovskite oxide", None),
    ],
)
def test_max_atoms(text: str, max_atoms: int | None) -> None:
    r = parse(text)
    assert r.max_atoms == max_atoms
    assert "atoms" not in r.ignored and "cell" not in r.ignored


def test_ignored_words() -> None:
    r = parse("Please give me a perovskite with high symmetry like SrTiO3")
    assert r.ignored == ["high", "symmetry"]
    assert r.like == "SrTiO3"
    assert parse("a perovskite as good as it gets").ignored == ["good", "gets"]
    assert parse("a transition metal oxide perovskite").ignored == ["transition", "metal"]


def test_deterministic_and_round_trip() -> None:
    text = "a stable Pb-free perovskite iodide containing Sn, not in MP, at most 40 atoms"
    a, b = parse(text), parse_request(text)
    assert a == b
    assert Request.from_dict(a.as_dict()) == a
    assert a.text == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("hello world", "perovskite"),
        ("something stable and new", "no crystal family"),
        ("a perovskite containing Xx", "unknown element 'Xx'"),
        ("a spinel containing Qq", "unknown element 'Qq'"),
        ("a Xx-based spinel", "unknown element 'Xx'"),
        ("a spinel containing only neon", "noble gas"),
        ("a perovskite with Xe", "noble gas"),
        ("a rocksalt containing only Na", "only"),
        ("a perovskite containing Pb but lead-free", "both required and excluded"),
        ("a spinel with ratio 1:1:3", "does not fit"),
        ("a pyrochlore with atom ratio 1:1", "does not fit"),
        ("a Heusler oxide", "intermetallic"),
        ("a half-Heusler fluoride", "intermetallic"),
        ("a rocksalt containing Na, K and Cl", "2 sites"),
        ("a rocksalt oxide containing Mg and Ca", "2 sites"),
        ("a compound with ratio 1:1 containing Fe, Co and Ni", "parts"),
        ("a metal or insulator perovskite", "both a metal"),
        ("a perovskite with ratio 1:0:3", "positive"),
        ("a perovskite or a spinel", "several crystal families"),
        ("a pyrochlore with at most 10 atoms", "atom limit"),
    ],
)
def test_errors(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(text)
    message = str(err.value)
    assert "\n" not in message and message.strip() == message
    assert fragment in message


def test_error_for_unknown_element_says_what_to_do() -> None:
    with pytest.raises(UsageError, match="symbol such as Mg or a name such as magnesium"):
        parse("containing Xx")


def test_allowed_edge_cases() -> None:
    assert parse("a spinel oxide containing only Mg and Al").required_elements == ["Mg", "Al"]
    assert parse("an elpasolite, a halide double perovskite").family == "elpasolite"
    assert parse("a spinel with atom ratio 3:4 containing Fe").atom_ratio == [3, 4]  # Fe3O4
    assert parse("a perovskite with ratio 2:2:6").atom_ratio == [1, 1, 3]


def test_lowercase_symbol_after_cue_is_refused_but_prefixes_are_not() -> None:
    with pytest.raises(UsageError, match="write 'Mg' instead of 'mg'"):
        parse("a perovskite containing mg")
    assert parse("a co-doped perovskite").required_elements == []
    assert parse("a spinel without metals").metallic is None


@pytest.mark.parametrize(
    ("text", "family", "anion"),
    [
        ("a MAX phase carbide", "max_phase", "carbide"),
        ("a MAX phase nitride", "max_phase", "nitride"),
        ("a ThCr2Si2-type phosphide", "thcr2si2", "phosphide"),
        ("a half-Heusler phosphide", "half_heusler", "phosphide"),
    ],
)
def test_intermetallic_takes_an_anion_class_a_site_lists(text: str, family: str, anion: str) -> None:
    r = parse(text)
    assert (r.family, r.anion_classes) == (family, [anion])


@pytest.mark.parametrize("text", ["a B2 nitride", "a Laves phase carbide", "a MAX phase oxide"])
def test_intermetallic_refuses_an_anion_class_no_site_lists(text: str) -> None:
    with pytest.raises(UsageError, match="intermetallic"):
        parse(text)
