"""Fuzz: the files that configure casemix (issue 15 classes 3, 4, 6, 9).

Each property throws generated damage at a loader and asserts what the
user gets: a casemix error naming the place, never a raw exception and
never a silently different configuration.
"""

from __future__ import annotations

import difflib
import re
import string

import pytest
from hypothesis import assume
from hypothesis import strategies as st
from tests.fuzz import fuzz
from tests.tiny_scheme import FILES

from casemix._schema import parse_toml, validate
from casemix._tables import table_rows
from casemix.benefits.policy import PolicyDocumentToml
from casemix.dip.catalog import CatalogToml
from casemix.errors import CasemixError, PolicyError, SchemeError
from casemix.scheme.model import SchemeToml
from casemix.scheme.rules import MAX_DEPTH, RuleSyntaxError, parse_rule

SCHEME_TOML = FILES["scheme.toml"].lstrip("\n")
CATALOG_TOML = (
    'kind = "dip"\nid = "c"\nname = "catalog"\nversion = "1"\nsource = "s"\n\n'
    '[grouping]\nunlisted_procedure_attribute = "ignore"\n'
)
POLICY_TOML = (
    '[document]\neffective = 2023-01-01\nsource = "s"\n\n[basic.cap]\nemployee = 1000\n'
    'resident = 500\n\n[catastrophic]\ncovers = ["policy"]\n\n[catastrophic.default]\n'
    "deductible = 100\nrates = [0.5]\n"
)
FILES_BY_MODEL = [
    (SCHEME_TOML, SchemeToml, SchemeError),
    (CATALOG_TOML, CatalogToml, SchemeError),
    (POLICY_TOML, PolicyDocumentToml, PolicyError),
]


def _key_lines(text: str) -> list[int]:
    """0-based indexes of the ``key = value`` lines of a TOML text."""
    return [i for i, ln in enumerate(text.splitlines()) if "=" in ln and not ln.startswith(("[", "#"))]


# ------------------------------------------------------------------ class 3: typos
def _misspelt_key_is_an_error_naming_line_and_key(data):
    text, model, error = data.draw(st.sampled_from(FILES_BY_MODEL))
    lines = text.splitlines()
    i = data.draw(st.sampled_from(_key_lines(text)))
    key = lines[i].split("=")[0].strip()
    pos = data.draw(st.integers(0, len(key) - 1))
    kind = data.draw(st.sampled_from(["drop", "swap", "insert", "replace"]))
    letter = data.draw(st.sampled_from(string.ascii_lowercase + "_"))
    if kind == "drop":
        typo = key[:pos] + key[pos + 1 :]
    elif kind == "swap" and pos + 1 < len(key):
        typo = key[:pos] + key[pos + 1] + key[pos] + key[pos + 2 :]
    elif kind == "insert":
        typo = key[:pos] + letter + key[pos:]
    else:
        typo = key[:pos] + letter + key[pos + 1 :]
    assume(typo and typo != key and typo.replace("_", "a").isidentifier())
    siblings = {ln.split("=")[0].strip() for ln in lines}  # a typo onto another key is a duplicate
    assume(typo not in siblings)
    lines[i] = lines[i].replace(key, typo, 1)
    doc = parse_toml("\n".join(lines) + "\n", "f.toml", error=error)
    with pytest.raises(error) as info:
        validate(doc, model, error=error)
    message = str(info.value)
    assert f"line {i + 1}" in message and "unknown key '" in message and typo in message
    if len(key) >= 5 and kind != "insert" or len(key) >= 8:
        # the hint is the allowed key closest to the typo (difflib's ratio, as the loaders rank
        # them): the key itself, or another key at least as close ('noa_drg' from 'no_adrg'
        # is nearer 'no_drg')
        hint = re.search(r"did you mean '([^']+)'\?", message)
        assert hint is not None, message
        ratio = lambda cand: difflib.SequenceMatcher(None, cand, typo).ratio()  # noqa: E731
        assert hint.group(1) == key or ratio(hint.group(1)) >= ratio(key), message


test_misspelt_key, test_misspelt_key_long = fuzz(
    _misspelt_key_is_an_error_naming_line_and_key, data=st.data()
)


_WRONG = {str: ["1", "true", "[1]", "{a = 1}", "2024-01-01"], bool: ['"yes"', "1", "0", '"true"']}


def _wrong_type_names_key_and_expected_type(data):
    text, model, error = data.draw(st.sampled_from(FILES_BY_MODEL[:2]))
    lines = text.splitlines()
    i = data.draw(st.sampled_from(_key_lines(text)))
    key, value = (part.strip() for part in lines[i].split("=", 1))
    kind = bool if value in ("true", "false") else str if value.startswith('"') else None
    assume(kind is not None)
    lines[i] = f"{key} = {data.draw(st.sampled_from(_WRONG[kind]))}"
    doc = parse_toml("\n".join(lines) + "\n", "f.toml", error=error)
    with pytest.raises(error) as info:
        validate(doc, model, error=error)
    assert f"line {i + 1}" in str(info.value) and "must be" in str(info.value)


test_wrong_type, test_wrong_type_long = fuzz(_wrong_type_names_key_and_expected_type, data=st.data())


# ------------------------------------------------------------- class 4: bytes in TOML
def _any_bytes_in_toml_give_a_casemix_error_or_a_model(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("toml") / "scheme.toml"
    path.write_bytes(raw)
    from casemix._schema import read_toml

    try:
        validate(read_toml(path), SchemeToml)
    except SchemeError as exc:
        assert str(path) in str(exc)


test_toml_bytes, test_toml_bytes_long = fuzz(
    _any_bytes_in_toml_give_a_casemix_error_or_a_model,
    raw=st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=20).map(lambda b: SCHEME_TOML.encode()[:150] + b),
        st.just("\ufeff".encode() + SCHEME_TOML.encode()),
    ),
)


def test_bom_is_accepted():
    assert validate(parse_toml("\ufeff" + SCHEME_TOML, "f"), SchemeToml).id == "tiny"


# -------------------------------------------------------------- class 6: deep nesting
def _nesting_parses_to_the_limit_and_errors_beyond(depth, opener, inner):
    text = (opener * depth) + inner + (")" * depth if opener == "(" else "")
    if depth + inner.count("(") + inner.count("!") <= MAX_DEPTH:
        parse_rule(text)
    else:
        with pytest.raises(RuleSyntaxError, match="nested deeper than"):
            parse_rule(text)


test_nesting, test_nesting_long = fuzz(
    _nesting_parses_to_the_limit_and_errors_beyond,
    depth=st.one_of(st.integers(0, MAX_DEPTH + 5), st.integers(MAX_DEPTH, 20_000)),
    opener=st.sampled_from(["(", "!"]),
    inner=st.sampled_from(["true", "age < 1", "pdx in L", "(true)", "!true"]),
)


def _garbage_rules_raise_only_syntax_errors(text):
    try:
        parse_rule(text, allow_severity=True)
    except RuleSyntaxError as exc:
        assert 1 <= exc.position <= len(text) + 1


test_garbage_rule, test_garbage_rule_long = fuzz(
    _garbage_rules_raise_only_syntax_errors,
    text=st.text(alphabet="()!&|<>=. 0123456789abcdeinrtuxpsLAgey_-", max_size=60),
)


# ---------------------------------------------------------- class 9: error locations
def _unterminated_quote_is_reported_on_its_line(tmp_path_factory, data):
    rows = data.draw(
        st.lists(
            st.tuples(
                st.text(string.ascii_letters, min_size=1, max_size=6),
                st.text(string.ascii_letters + " ", max_size=10),
            ),
            min_size=1,
            max_size=40,
        )
    )
    at = data.draw(st.integers(0, len(rows) - 1))
    lines = ["code,name"] + [f"{c},{n}" for c, n in rows]
    lines[at + 1] = f'{rows[at][0]},"{rows[at][1]}'  # opens a quote, never closes it
    folder = tmp_path_factory.mktemp("t")
    path = folder / "t.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if data.draw(st.booleans()):  # any later quote closes it lines below: still the opening line
        path.write_text("\n".join(lines) + '\nx,"y"\n', encoding="utf-8")
    with pytest.raises(SchemeError, match="quoted value is not closed") as info:
        list(table_rows(path, folder))
    assert info.value.line == at + 2 and info.value.column == "name"


test_quote_line, test_quote_line_long = fuzz(_unterminated_quote_is_reported_on_its_line, data=st.data())


def test_errors_are_casemix_errors():
    assert issubclass(SchemeError, CasemixError) and issubclass(PolicyError, CasemixError)


# ----------------------------------------------- class 3/9: every key found on its line
_NAME = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)
_SCALAR = st.sampled_from(
    [
        "1",
        '"a = [b]"',
        "true",
        "2024-01-05",
        "[1, 2]",
        '"""x\ny"""',
        "'it is'",
        "{ a = 1 }",
        "[\n  1,\n  2,\n]",
        '"#"',
    ]
)


def _key_lines_match_where_keys_are_written(data):
    lines: list[str] = []
    expected: dict[tuple, int] = {}

    def keys(prefix: tuple) -> None:
        for name in data.draw(st.lists(_NAME, unique=True, max_size=4)):
            quoted = data.draw(st.booleans())
            expected[prefix + (name,)] = len(lines) + 1
            key = f'"{name}"' if quoted else name
            lines.extend(f"{key} = {data.draw(_SCALAR)}".split("\n"))

    keys(())
    for table in data.draw(st.lists(_NAME, unique=True, max_size=3)):
        if data.draw(st.booleans()):
            for i in range(data.draw(st.integers(1, 3))):
                lines.append(f"[[t_{table}]]")
                keys((f"t_{table}", i))
        else:
            lines.append(f"[t_{table}]")
            keys((f"t_{table}",))
    doc = parse_toml("\n".join(lines) + "\n", "f.toml")
    for loc, line in expected.items():
        assert doc.line_of(loc) == line, (loc, "\n".join(lines))


test_key_lines, test_key_lines_long = fuzz(_key_lines_match_where_keys_are_written, data=st.data())
