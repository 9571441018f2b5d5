"""Property-based fuzzing of what users type: the parser and `genms known` (hypothesis).

The property: any input either works or raises the documented usage error with a one-line message;
never another exception. Together the tests below draw 10,000 inputs in CI (3,000 + 3,000 requests,
4,000 formulas), with a fixed derandomized seed so a failure reproduces.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genms_pmg.cli import main
from genms_pmg.errors import UsageError
from genms_pmg.parsing import parse_request
from genms_pmg.request import Request

#: Words a chemist's request is made of, so the fuzz reaches deep into the rules, not only the
#: "nothing recognised" branch.
WORDS = ["a", "the", "new", "stable", "spinel", "perovskite", "oxide", "sulfide", "thio", "oxynitride", "with",
         "without", "containing", "Mg", "Li", "Og", "Xx", "barium", "on", "A", "B", "site", "tetrahedral", "rare-earth",
         "transition", "metal", "not", "in", "ICSD", "Materials", "Project", "like", "CaTiO3", "but", "instead", "of",
         "Cu", "ABO3", "Co2MnX", "at", "most", "6", "atoms", "space", "group", "225", "Fm-3m", "P21/c", "cubic",
         "ratio", "1:1:3", "0:1", "lead-free", "earth-abundant", "non-toxic", "stannate", "-", ",", "'", "=", "or",
         "and", "metallic", "insulator", "semiconductor", "only", "La", "Pb", "Ba", "Sr", "Ti", "halide", "×", "é"]
FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)


def _check_parse(text: str) -> None:
    try:
        request = parse_request(text)
    except UsageError as err:
        assert "\n" not in str(err) and str(err).strip()
        return
    assert isinstance(request, Request)
    assert Request.from_dict(request.as_dict()) == request


@FUZZ
@given(st.lists(st.sampled_from(WORDS), min_size=0, max_size=14).map(" ".join))
def test_parser_on_request_like_word_salad(text):
    _check_parse(text)


@FUZZ
@given(st.text(max_size=80))
def test_parser_on_arbitrary_text(text):
    _check_parse(text)


FORMULA_PIECES = st.one_of(st.sampled_from(["Na", "Cl", "O", "Mg", "Al", "Qq", "X", "(", ")", "Og", "H", "e", "Fe"]),
                           st.integers(min_value=0, max_value=10**15).map(str), st.sampled_from([".5", "-", " ", "+"]))


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.lists(FORMULA_PIECES, min_size=1, max_size=8).map("".join))
def test_genms_known_on_formula_like_text(token):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["known", token, "--json"]) if token.strip() and not token.startswith("-") else 0
    if code == 0:
        if out.getvalue():
            doc = json.loads(out.getvalue())
            assert isinstance(doc["formulas"][0]["known"], bool)
    else:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("genms: error:"), err.getvalue()
