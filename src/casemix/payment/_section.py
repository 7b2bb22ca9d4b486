"""The base of every policy section model of the payment rules (``[special_cases]``, …).

Each rule module defines its own pydantic v2 model for its TOML table;
this base makes them strict (unknown keys are errors, values frozen) and
turns pydantic's validation errors into :class:`~casemix.errors.PolicyError`
naming the table and the key, so a policy file's author sees
``[new_tech] min_share: must be <= 1`` rather than a pydantic traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from casemix.errors import PolicyError

__all__ = ["Section", "policy_error"]


def policy_error(exc: ValidationError, table: str, source: str) -> PolicyError:
    """A :class:`PolicyError` listing each bad key of ``[table]`` with pydantic's reason."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(table)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{key}: {msg}")
    return PolicyError(f"{source}: [{table}] " + "; ".join(parts))


class Section(BaseModel):
    """Strict, immutable policy table: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    #: the TOML table name, for error messages
    TABLE: ClassVar[str] = ""

    @classmethod
    def from_table(cls, data: Mapping[str, Any] | None, *, source: str = "<policy>") -> Self:
        """Validate one TOML table; errors are :class:`PolicyError` naming the table and key."""
        try:
            return cls.model_validate(dict(data or {}))
        except ValidationError as exc:
            raise policy_error(exc, cls.TABLE, source) from None
