"""The rule language parser: every form of FORMAT.md, and errors with positions."""

import pytest

from casemix.scheme.rules import (
    And,
    Compare,
    InList,
    Not,
    Or,
    OrProc,
    RuleSyntaxError,
    Severity,
    Sites,
    TrueRule,
    compare,
    lists_used,
    parse_rule,
)


@pytest.mark.parametrize(
    "text, tree",
    [
        ("true", TrueRule()),
        ("pdx in A.pdx", InList("pdx", "A.pdx")),
        ("sdx in X-1_b", InList("sdx", "X-1_b")),
        ("dx in PS1.dx", InList("dx", "PS1.dx")),
        ("pproc in AA1.pproc", InList("pproc", "AA1.pproc")),
        ("proc in AC1.a", InList("proc", "AC1.a")),
        ("pproc_or", OrProc(True)),
        ("proc_or", OrProc(False)),
        ("sites(MDCZ.pdx) >= 2", Sites("MDCZ.pdx", ">=", 2.0)),
        ("birth_weight < 1500", Compare("birth_weight", "<", 1500.0)),
        ("age_days<=28", Compare("age_days", "<=", 28.0)),
        ("sex == 1", Compare("sex", "==", 1.0)),
        ("discharge != 5", Compare("discharge", "!=", 5.0)),
        ("los > 2.5", Compare("los", ">", 2.5)),
        ("age >= -1", Compare("age", ">=", -1.0)),
        ("!proc_or", Not(OrProc(False))),
        ("!!true", Not(Not(TrueRule()))),
    ],
)
def test_each_predicate_form(text, tree):
    assert parse_rule(text) == tree


def test_and_binds_tighter_than_or():
    assert parse_rule("true | sex == 1 & age > 3") == Or(
        (TrueRule(), And((Compare("sex", "==", 1.0), Compare("age", ">", 3.0))))
    )


def test_parentheses_group():
    tree = parse_rule("pdx in L & (proc in G1 | (proc in G2 & proc in G3))")
    assert tree == And(
        (InList("pdx", "L"), Or((InList("proc", "G1"), And((InList("proc", "G2"), InList("proc", "G3"))))))
    )
    assert lists_used(tree) == {"L", "G1", "G2", "G3"}


def test_severity_only_where_allowed():
    assert parse_rule("mcc | cc", allow_severity=True) == Or((Severity("MCC"), Severity("CC")))
    with pytest.raises(RuleSyntaxError, match="only in drg.csv"):
        parse_rule("mcc")


@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("", 1, "empty rule"),
        ("pdx in", 7, "expected a list name"),
        ("pdx A.pdx", 5, "expected 'in'"),
        ("(true", 6, "expected ')'"),
        ("age < x", 7, "expected a number"),
        ("weight < 3", 1, "unknown predicate 'weight'"),
        ("true true", 6, "unexpected 'true'"),
        ("sites(L) >= ", 13, "whole number"),
        ("age = 3", 5, "unexpected character"),
        ("true &", 7, "expected a predicate"),
    ],
)
def test_syntax_errors_name_the_position(text, position, fragment):
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(text)
    assert info.value.position == position
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("<", 1, 2, True),
        ("<", 2, 2, False),
        ("<=", 2, 2, True),
        ("==", 2, 2, True),
        ("!=", 2, 2, False),
        (">=", 1, 2, False),
        (">", 3, 2, True),
    ],
)
def test_compare(op, a, b, expected):
    assert compare(op, a, b) is expected


def test_deep_nesting_is_a_syntax_error_not_a_recursion_error():
    from casemix.scheme.rules import MAX_DEPTH, RuleSyntaxError, parse_rule

    ok = "(" * MAX_DEPTH + "true" + ")" * MAX_DEPTH
    assert parse_rule(ok) == parse_rule("true")
    for deep in ("(" * 2000 + "true" + ")" * 2000, "!" * 2000 + "true", "(" * 5000):
        with pytest.raises(RuleSyntaxError, match=f"nested deeper than {MAX_DEPTH}") as info:
            parse_rule(deep)
        assert info.value.position == MAX_DEPTH + 1
