"""Strict TOML schemas (issue 15, class 3): unknown keys and wrong types are errors with a place."""

from __future__ import annotations

import shutil

import pytest
from tests.conftest import SHARED, needs_shared
from tests.tiny_scheme import FILES, write

from casemix._schema import StrictModel, parse_toml, read_toml, validate
from casemix.errors import PolicyError, SchemeError
from casemix.scheme import load_scheme
from casemix.scheme.model import SchemeToml


class Inner(StrictModel):
    reason: str
    weight: float = 1.0


class Outer(StrictModel):
    id: str
    enabled: bool = False
    inner: Inner | None = None
    items: list[Inner] = []


TEXT = """# a comment
id = "x"
enabled = true

[inner]
reason = "r"

[[items]]
reason = "first"

[[items]]
reason = "second"
wieght = 2.0
"""


def test_unknown_key_names_file_line_key_and_nearest():
    doc = parse_toml(TEXT, "f.toml")
    with pytest.raises(SchemeError) as info:
        validate(doc, Outer)
    err = info.value
    assert (err.file, err.line, err.column) == ("f.toml", 13, "items[2].wieght")
    assert "did you mean 'weight'?" in str(err)


def test_wrong_type_names_key_and_expected_type():
    doc = parse_toml(TEXT.replace("enabled = true", "enabled = 1").replace("wieght", "weight"), "f.toml")
    with pytest.raises(SchemeError, match="'enabled' must be true or false, got 1 \\(integer\\)") as info:
        validate(doc, Outer)
    assert info.value.line == 3
    doc = parse_toml('id = "x"\n[inner]\nreason = "r"\nweight = "heavy"\n', "g.toml")
    with pytest.raises(SchemeError, match="'inner.weight' must be a number, got 'heavy'") as info:
        validate(doc, Outer)
    assert info.value.line == 4


def test_missing_key_points_at_its_table():
    doc = parse_toml('id = "x"\n\n[inner]\nweight = 2\n', "f.toml")
    with pytest.raises(SchemeError, match="required key 'inner.reason' is missing") as info:
        validate(doc, Outer)
    assert info.value.line == 3


def test_other_error_classes_carry_the_place_in_the_message():
    doc = parse_toml('id = "x"\ncolour = 1\n', "p.toml")
    with pytest.raises(PolicyError, match=r"^p\.toml, line 2, key colour: unknown key 'colour'"):
        validate(doc, Outer, error=PolicyError)


def test_dotted_and_quoted_keys_and_multiline_values_keep_lines():
    text = (
        'id = """\nmany\nlines\n"""\nitems = [\n  {reason = "a"},\n]\n"inner".reason = "q"\ninner.extra = 1\n'
    )
    doc = parse_toml(text, "f.toml")
    assert doc.line_of(("inner", "reason")) == 8
    with pytest.raises(SchemeError, match="unknown key 'inner.extra'") as info:
        validate(doc, Outer)
    assert info.value.line == 9


def test_syntax_error_line_bom_and_bad_bytes(tmp_path):
    with pytest.raises(SchemeError, match="TOML syntax error") as info:
        parse_toml('id = "x"\n\nflag = \n', "f.toml")
    assert info.value.line == 3
    p = tmp_path / "bom.toml"
    p.write_bytes('\ufeffid = "x"\n'.encode())
    assert validate(read_toml(p), Outer).id == "x"
    p.write_bytes(b'id = "x"\nreason = "\xb2\xe2"\n')
    with pytest.raises(SchemeError, match="byte 0xb2 at offset 19") as info:
        read_toml(p)
    assert info.value.line == 2


@pytest.mark.parametrize(
    "old, new, key, near",
    [
        ("mdc_fallthrough = true", "mdc_falltrough = true", "mdc_falltrough", "mdc_fallthrough"),
        ("[status]", "[statuses]", "statuses", "status"),
        ("no_adrg = ", "no_ardg = ", "reasons.no_ardg", "no_adrg"),
        ('reason = "sex missing"', 'reasn = "sex missing"', "validity.check[1].reasn", "reason"),
    ],
)
def test_scheme_toml_typos_are_errors(tmp_path, old, new, key, near):
    text = FILES["scheme.toml"].replace(old, new, 1).lstrip("\n")
    with pytest.raises(SchemeError, match=f"did you mean '{near}'") as info:
        load_scheme(write(tmp_path, **{"scheme.toml": text}))
    assert info.value.column == key
    assert (
        info.value.line
        == text.splitlines().index(
            next(line for line in text.splitlines() if line.startswith(new.split(" ")[0]))
        )
        + 1
    )


def test_scheme_toml_types_checked(tmp_path):
    text = FILES["scheme.toml"].replace('never_excluded_table = "99"', "never_excluded_table = 99")
    with pytest.raises(SchemeError, match="'never_excluded_table' must be text, got 99"):
        load_scheme(write(tmp_path, **{"scheme.toml": text}))


@needs_shared
def test_misspelt_switch_in_national_scheme_is_an_error(tmp_path):
    # regression (issue 15): "mdc_fallthrough" misspelt used to be ignored, which turned
    # fall-through off and changed 1,930 of the 5,000 golden groups without a word
    folder = tmp_path / "chs"
    shutil.copytree(SHARED / "schemes" / "chs-drg-1.1", folder, ignore=shutil.ignore_patterns("expected"))
    toml = folder / "scheme.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace("mdc_fallthrough", "mdc_fall_through"), encoding="utf-8"
    )
    with pytest.raises(
        SchemeError, match="unknown key 'mdc_fall_through'; did you mean 'mdc_fallthrough'"
    ) as info:
        load_scheme(folder)
    assert info.value.line == 8


def test_empty_id_is_named():
    with pytest.raises(SchemeError, match="'id' must not be empty") as info:
        validate(parse_toml('\nid = ""\n', "f.toml"), SchemeToml)
    assert info.value.line == 2
