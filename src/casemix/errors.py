"""One exception hierarchy for casemix.

Every message names the file, row or column at fault and, where it can,
what would fix it.
"""

from __future__ import annotations


class CasemixError(Exception):
    """Base class of every error casemix raises on purpose."""


class SchemeError(CasemixError):
    """A scheme folder (or DIP catalog) is malformed.

    The message names the file, line and column of the fault.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | str | None = None,
    ) -> None:
        where = []
        if file is not None:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        self.file, self.line, self.column = file, line, column
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class InputError(CasemixError):
    """Case data is structurally unusable (a required column missing, a wrong type)."""


class PolicyError(CasemixError):
    """A payment or benefit policy is malformed or inconsistent."""


class CasemixWarning(UserWarning):
    """Base class of the warnings casemix gives about data it could still process."""


class LowGroupingRateWarning(CasemixWarning):
    """A grouping run put fewer than half of its cases in a group.

    Usually the wrong scheme for the data (codes of another edition) or a
    column read wrongly; the message names the most frequent unknown codes.
    """
