"""The base of every policy section model of the payment rules (``[special_cases]``, …).

Each rule module defines its own pydantic v2 model for its TOML table, on
:class:`casemix._schema.StrictModel` (unknown keys and wrong types are
errors, values frozen), so the settlement policy can nest them.  Arrays
read from TOML arrive as lists: tuple fields accept them.
:meth:`Section.from_table` validates one table on its own with the same
error messages as a whole policy file (file, line, ``table.key``, the
nearest allowed key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from casemix._schema import StrictModel, TomlDoc, validate
from casemix.errors import PolicyError

__all__ = ["Section"]


class Section(StrictModel):
    """Strict, immutable policy table of one payment rule."""

    #: the TOML table name, for error messages
    TABLE: ClassVar[str] = ""

    @classmethod
    def from_table(cls, data: Mapping[str, Any] | None, *, source: str = "<policy>") -> Self:
        """Validate one TOML table; errors are :class:`PolicyError` naming ``table.key``."""
        doc = TomlDoc(path=source, data={cls.TABLE: dict(data or {})})
        return validate(doc, cls, error=PolicyError, at=(cls.TABLE,))
