"""Strict schemas for the TOML files casemix reads (scheme, policies, catalogs).

One path for every loader: read the text, parse TOML, validate against a
pydantic v2 model that forbids unknown keys and checks types strictly, and
turn every pydantic error into a casemix error naming the file, the line,
the key and — for an unknown key — the nearest allowed key.  A misspelt
switch must never be ignored: it used to change 1,930 of the 5,000 golden
CHS-DRG groups silently (issue 15, class 3).

Use::

    class MyFile(StrictModel):
        id: str
        flag: bool = False

    doc = read_toml(path, error=PolicyError)
    model = validate(doc, MyFile, error=PolicyError)
    doc.line_of(("flag",))   # line of a key, for later semantic errors
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from casemix.errors import CasemixError, SchemeError
from casemix.io import read_text

__all__ = [
    "StrictModel",
    "TomlDoc",
    "read_toml",
    "parse_toml",
    "validate",
    "load_toml",
    "raise_at",
    "key_text",
]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every file schema: unknown keys are errors, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class TomlDoc:
    """A parsed TOML file with the line of every key and table header."""

    path: str
    data: dict
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, loc: tuple | list) -> int | None:
        """Line of the key at ``loc`` (keys and 0-based array indexes), or of its nearest parent."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return None


def key_text(loc: tuple | list) -> str:
    """``("validity", "check", 2, "rule")`` → ``"validity.check[3].rule"`` (arrays counted from 1)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def raise_at(
    error: type[CasemixError], message: str, *, file: str, line: int | None = None, key: str | None = None
) -> typing.NoReturn:
    """Raise ``error`` located at ``file``/``line``/``key``.

    :class:`SchemeError` carries the location as attributes (``column`` is the
    key); other casemix errors get it at the head of the message.
    """
    if issubclass(error, SchemeError):
        raise error(message, file=file, line=line, column=key)
    where = [file] + ([f"line {line}"] if line is not None else []) + ([f"key {key}"] if key else [])
    raise error(f"{', '.join(where)}: {message}")


# ------------------------------------------------------------------ writing
def toml_string(text: str) -> str:
    """``text`` as a TOML basic string, quotes included, so any text reads back as it was.

    TOML's basic-string escapes are JSON's; DEL is the one control character JSON
    leaves bare and TOML refuses.
    """
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


# ------------------------------------------------------------------ reading
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_toml(text: str, path: str, *, error: type[CasemixError] = SchemeError) -> TomlDoc:
    """Parse TOML ``text`` read from ``path`` (a leading BOM is accepted)."""
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_AT.search(str(exc))
        raise_at(
            error,
            f"TOML syntax error: {_TOML_AT.sub('', str(exc)).strip()}",
            file=path,
            line=int(found.group(1)) if found else None,
        )
    return TomlDoc(path=path, data=data, lines=_key_lines(text))


def read_toml(path: str | Path, *, error: type[CasemixError] = SchemeError) -> TomlDoc:
    """Read and parse a UTF-8 TOML file; undecodable bytes name their offset."""
    path = Path(path)
    if not path.is_file():
        raise_at(error, "file not found", file=str(path))
    text = read_text(path, what="TOML file", error=error)
    return parse_toml(text, str(path), error=error)


# ------------------------------------------------------------ key locations
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _split_key(text: str) -> tuple[str, ...]:
    """Dotted TOML key → its parts, quotes removed."""
    parts, buf, quote = [], "", None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return tuple(parts)


def _key_lines(text: str) -> dict[tuple, int]:
    """Map every key path (with 0-based array-of-tables indexes) to its line.

    A light line scanner, run only on text tomllib has already accepted:
    multi-line strings and arrays are skipped, so only their first line counts.
    """
    lines: dict[tuple, int] = {}
    arrays: dict[tuple, int] = {}
    table: tuple = ()
    multiline: str | None = None
    depth = 0

    def resolve(parts: tuple[str, ...]) -> tuple:
        out: tuple = ()
        for p in parts:
            out += (p,)
            if out in arrays:
                out += (arrays[out] - 1,)
        return out

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if multiline:
            if line.count(multiline) % 2 == 1:
                multiline = None
            continue
        bare = _STRING.sub('""', line.replace('"""', "\x00").replace("'''", "\x01"))
        if depth > 0:
            depth += bare.count("[") - bare.count("]")
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            parts = _split_key(line[2 : line.index("]]")])
            base = resolve(parts[:-1]) + (parts[-1],)
            arrays[base] = arrays.get(base, 0) + 1
            table = base + (arrays[base] - 1,)
            lines.setdefault(base, number)
            lines[table] = number
            continue
        if line.startswith("["):
            table = resolve(_split_key(line[1 : line.index("]")]))
            lines.setdefault(table, number)
            continue
        eq = bare.find("=")
        if eq < 0:
            continue
        # the key part of ``bare`` has strings blanked: find '=' in the original by position
        key = _split_key(_first_equals_split(line))
        lines.setdefault(table + key, number)
        value = bare[eq + 1 :]
        for marker in ("\x00", "\x01"):
            if value.count(marker) % 2 == 1:
                multiline = '"""' if marker == "\x00" else "'''"
        depth = value.split("#", 1)[0].count("[") - value.split("#", 1)[0].count("]")
        depth = max(depth, 0)
    return lines


def _first_equals_split(line: str) -> str:
    """The key text of a ``key = value`` line ('=' inside a quoted key ignored)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return line[:i]
    return line


# --------------------------------------------------------------- validation
_EXPECTED = {
    "string_type": "text",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "an array",
    "tuple_type": "an array",
    "date_type": "a date (YYYY-MM-DD, unquoted)",
    "int_from_float": "a whole number",
    "finite_number": "a finite number",
}


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = (models or args)[0]
        else:
            return tp


def _allowed(model: type[BaseModel], loc: tuple) -> list[str]:
    """Keys a table at ``loc`` may hold (empty when it is not a model)."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            by_key = {(f.alias or n): f for n, f in tp.model_fields.items()}
            if part not in by_key:
                return []
            tp = by_key[part].annotation
        elif typing.get_origin(tp) in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [(f.alias or n) for n, f in tp.model_fields.items()]
    return []


def _data_loc(data: Any, loc: tuple) -> tuple:
    """``loc`` without pydantic's union tags: only steps that exist in the data (plus a last key)."""
    out: tuple = ()
    node = data
    for i, part in enumerate(loc):
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and 0 <= part < len(node)
        ):
            node = node[part]
            out += (part,)
        elif i == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            out += (part,)  # a missing key
    return out


def _describe(err: Mapping[str, Any], model: type[BaseModel], loc: tuple, at: tuple = ()) -> str:
    kind = err["type"]
    key = key_text(at + loc) or "(file)"
    if kind == "extra_forbidden":
        allowed = _allowed(model, loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"unknown key {key!r}{hint} (allowed here: {', '.join(allowed) or 'none'})"
    if kind == "missing":
        return f"required key {key!r} is missing"
    got = err.get("input")
    shown = f"{got!r}" if not isinstance(got, (dict, list)) else type(got).__name__
    if kind in _EXPECTED:
        return f"{key!r} must be {_EXPECTED[kind]}, got {shown} ({_toml_type(got)})"
    if kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
        return f"{key!r} must not be empty"
    if kind == "literal_error":
        return f"{key!r} must be one of {err['ctx']['expected']}, got {shown}"
    return f"{key!r}: {err['msg']} (got {shown})"


def _toml_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "text", dict: "table", list: "array"}.get(
        type(value), type(value).__name__
    )


def validate(doc: TomlDoc, model: type[M], *, error: type[CasemixError] = SchemeError, at: tuple = ()) -> M:
    """Validate ``doc.data`` (or the part of it at key path ``at``) against ``model``.

    Raises
    ------
    CasemixError
        Of class ``error``, for the first problem: file, line, key and what is
        wrong (for an unknown key, the nearest allowed key); the count of further
        problems is appended.
    """
    source: Any = doc.data
    for part in at:
        source = source[part]
    try:
        return model.model_validate(source)
    except ValidationError as exc:
        # a misspelt key shows up twice (unknown + required missing): name the typo first
        errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        loc = _data_loc(source, tuple(first["loc"]))
        message = _describe(first, model, loc, at)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise_at(error, message, file=doc.path, line=doc.line_of(at + loc), key=key_text(at + loc) or None)


def load_toml(
    path: str | Path, model: type[M], *, error: type[CasemixError] = SchemeError
) -> tuple[M, TomlDoc]:
    """Read ``path`` and validate it against ``model``; returns both the model and the document."""
    doc = read_toml(path, error=error)
    return validate(doc, model, error=error), doc
