"""The rule language of scheme folders (``../shared/schemes/FORMAT.md``, "Rules").

A rule is parsed once, at load, into a small immutable tree.  The grouper
(reference) walks the tree; the batch engine compiles it to a postfix
program.  Grammar::

    expr      := term ('|' term)*
    term      := factor ('&' factor)*
    factor    := '!' factor | '(' expr ')' | predicate
    predicate := 'true' | TARGET 'in' LIST | 'pproc_or' | 'proc_or'
               | 'sites' '(' LIST ')' OP N | FIELD OP NUMBER | 'mcc' | 'cc'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

#: fields a comparison may read; each is a number (or missing) on a case
FIELDS = ("sex", "age", "age_days", "birth_weight", "los", "discharge")
#: code targets of ``X in LIST``
TARGETS = ("pdx", "sdx", "dx", "pproc", "proc")
OPS = ("<", "<=", "==", "!=", ">=", ">")
#: deepest nesting of '(' and '!' a rule may have.  Real rules nest a few
#: levels; the limit keeps the parser, the tree walkers and the batch
#: compiler (all recursive) far from Python's recursion limit (issue 15).
MAX_DEPTH = 100


class RuleSyntaxError(ValueError):
    """A rule does not parse; ``position`` is the 1-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position})")
        self.position = position
        self.bare = message


# -- the tree -----------------------------------------------------------------


@dataclass(frozen=True)
class TrueRule:
    """``true``: always holds."""


@dataclass(frozen=True)
class InList:
    """``target in LIST``: a code of the case (by target) is in the named list."""

    target: str
    list: str


@dataclass(frozen=True)
class OrProc:
    """``pproc_or`` / ``proc_or``: a procedure (principal / any) is an OR procedure."""

    principal_only: bool


@dataclass(frozen=True)
class Sites:
    """``sites(LIST) OP N``: distinct ``attr`` values of LIST among all diagnoses."""

    list: str
    op: str
    n: float


@dataclass(frozen=True)
class Compare:
    """``FIELD OP NUMBER``; false when the field is missing."""

    field: str
    op: str
    value: float


@dataclass(frozen=True)
class Severity:
    """``mcc`` / ``cc``: a non-excluded secondary diagnosis of exactly that level."""

    level: str  # "MCC" or "CC"


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


Expr: TypeAlias = TrueRule | InList | OrProc | Sites | Compare | Severity | Not | And | Or


def compare(op: str, left: float, right: float) -> bool:
    """Apply a comparison operator of the rule language."""
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == ">=":
        return left >= right
    return left > right


def lists_used(expr: Expr) -> set[str]:
    """Names of every code list an expression reads."""
    if isinstance(expr, (InList, Sites)):
        return {expr.list}
    if isinstance(expr, Not):
        return lists_used(expr.operand)
    if isinstance(expr, (And, Or)):
        return set().union(*(lists_used(e) for e in expr.operands))
    return set()


def walk(expr: Expr):
    """Yield every node of an expression tree, parents first."""
    yield expr
    if isinstance(expr, Not):
        yield from walk(expr.operand)
    elif isinstance(expr, (And, Or)):
        for e in expr.operands:
            yield from walk(e)


# -- the parser ---------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<op><=|>=|==|!=|<|>)|(?P<punct>[|&!()])"
    r"|(?P<number>-?\d+(?:\.\d+)?(?![A-Za-z0-9_.\-]))|(?P<word>[A-Za-z0-9_.\-]+))"
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        kind = m.lastgroup if m else None
        if not m or m.end() == pos or kind is None:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise RuleSyntaxError(f"unexpected character {text[start]!r}", start + 1)
        start = m.start(kind)
        tokens.append((kind, m.group(kind), start + 1))
        pos = m.end()
    tokens.append(("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str, allow_severity: bool) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.allow_severity = allow_severity
        self.depth = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, value: str | None, what: str) -> tuple[str, str, int]:
        tok = self.take()
        if tok[0] != kind or (value is not None and tok[1] != value):
            found = "end of rule" if tok[0] == "end" else repr(tok[1])
            raise RuleSyntaxError(f"expected {what}, found {found}", tok[2])
        return tok

    def parse(self) -> Expr:
        expr = self.expr()
        tok = self.peek()
        if tok[0] != "end":
            raise RuleSyntaxError(f"unexpected {tok[1]!r} after a complete rule", tok[2])
        return expr

    def expr(self) -> Expr:
        parts = [self.term()]
        while self.peek()[:2] == ("punct", "|"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def term(self) -> Expr:
        parts = [self.factor()]
        while self.peek()[:2] == ("punct", "&"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def factor(self) -> Expr:
        kind, value, pos = self.peek()
        if (kind, value) not in (("punct", "!"), ("punct", "(")):
            return self.predicate()
        self.take()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleSyntaxError(f"rule nested deeper than {MAX_DEPTH} levels of '(' or '!'", pos)
        inner: Expr
        if value == "!":
            inner = Not(self.factor())
        else:
            inner = self.expr()
            self.expect("punct", ")", "')'")
        self.depth -= 1
        return inner

    def number(self, what: str) -> float:
        kind, value, pos = self.take()
        if kind != "number":
            found = "end of rule" if kind == "end" else repr(value)
            raise RuleSyntaxError(f"expected {what}, found {found}", pos)
        return float(value)

    def op(self) -> str:
        return self.expect("op", None, "a comparison operator (< <= == != >= >)")[1]

    def list_name(self) -> str:
        return self.expect("word", None, "a list name")[1]

    def predicate(self) -> Expr:
        kind, word, pos = self.take()
        if kind != "word":
            found = "end of rule" if kind == "end" else repr(word)
            raise RuleSyntaxError(f"expected a predicate, found {found}", pos)
        if word == "true":
            return TrueRule()
        if word in TARGETS:
            self.expect("word", "in", f"'in' after {word!r}")
            return InList(word, self.list_name())
        if word in ("pproc_or", "proc_or"):
            return OrProc(principal_only=(word == "pproc_or"))
        if word == "sites":
            self.expect("punct", "(", "'(' after 'sites'")
            name = self.list_name()
            self.expect("punct", ")", "')'")
            op = self.op()
            n = self.number("a whole number of sites")
            return Sites(name, op, n)
        if word in FIELDS:
            op = self.op()
            return Compare(word, op, self.number(f"a number to compare {word} with"))
        if word in ("mcc", "cc"):
            if not self.allow_severity:
                raise RuleSyntaxError(f"{word!r} is allowed only in drg.csv rules", pos)
            return Severity(word.upper())
        raise RuleSyntaxError(
            f"unknown predicate {word!r}; expected true, pdx/sdx/dx/pproc/proc in LIST, "
            f"pproc_or, proc_or, sites(LIST), a field ({', '.join(FIELDS)})"
            + (", mcc or cc" if self.allow_severity else ""),
            pos,
        )


def parse_rule(text: str, *, allow_severity: bool = False) -> Expr:
    """Parse one rule expression.

    Parameters
    ----------
    text
        The rule as written in a scheme table.
    allow_severity
        Whether ``mcc`` / ``cc`` may appear (drg.csv only).

    Raises
    ------
    RuleSyntaxError
        With the 1-based character position of the fault.
    """
    if text is None or not str(text).strip():
        raise RuleSyntaxError("empty rule (write 'true' for a rule that always holds)", 1)
    return _Parser(str(text), allow_severity).parse()
