"""The column-mapping file of ``--map FILE``: TOML, one ``[columns]`` table.

::

    # mapping.toml: your column = canonical name (docs/cases.md)
    [columns]
    "自付金额(元)" = "total_cost"
    "机构" = "hospital_id"

Read with the strict schema helper of every casemix config file: an unknown
key is an error naming the file, line and the nearest allowed key; a target
that is not a canonical name is an :class:`~casemix.errors.InputError`
naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from casemix._schema import StrictModel, load_toml, raise_at
from casemix.cases._resolve import check_mapping
from casemix.errors import InputError


class MappingFile(StrictModel):
    """``[columns]``: input column → canonical name."""

    columns: dict[str, str]


def read_mapping(path: str | Path) -> dict[str, str]:
    """The ``{column: canonical name}`` mapping of a ``--map`` TOML file.

    Raises
    ------
    casemix.errors.InputError
        The file is missing, not UTF-8, not TOML, has keys other than
        ``[columns]``, a value that is not text, or a target that is not a
        canonical name (``docs/cases.md``).
    """
    model, doc = load_toml(path, MappingFile, error=InputError)
    for column, target in model.columns.items():
        try:
            check_mapping({column: target})
        except InputError as exc:
            raise_at(InputError, str(exc), file=str(path), line=doc.line_of(("columns", column)))
    return dict(model.columns)
