"""Reading the CSV tables of a scheme or catalog folder: exact lines, nothing from outside.

Both folder loaders (``scheme.load``, ``dip.catalog``) read their tables
through :func:`table_rows`, which

- refuses a table that is, or links to, a file outside the folder, so an
  error message can never echo another file's content (issue 15, class 9);
- decodes through :func:`casemix.io.read_text` (a bad byte named by offset and line);
- numbers rows by their physical line, and refuses a quoted value that runs
  over a line end: an unterminated quote used to swallow the rest of the file
  and be reported hundreds of lines later, at the end.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from casemix.errors import SchemeError
from casemix.io import read_text


def check_inside(path: Path, root: Path) -> None:
    """Raise SchemeError when ``path`` resolves (through links) outside ``root``."""
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:  # a link loop
        inside = False
    if not inside:
        raise SchemeError(
            "is a link to a file outside the folder; casemix reads only files "
            "inside it (copy the file in instead of linking it)",
            file=str(path),
        )


def table_rows(path: Path, root: Path, what: str = "scheme table") -> Iterator[tuple[int, list[str]]]:
    """(physical line, fields) of every row of the CSV table ``path`` inside folder ``root``.

    The header is the row of line 1 (blank lines yield ``[]``); ``what`` names
    the file in an encoding error.
    """
    check_inside(path, root)
    reader = csv.reader(io.StringIO(read_text(path, what=what, error=SchemeError), newline=""))
    header: list[str] | None = None
    last = 0
    for row in reader:
        start, last = last + 1, reader.line_num
        # an unquoted value cannot hold a line end: one that does opened a quote on ``start``
        # (and ran on to a later line, or to the end of the file)
        spans = [i for i, v in enumerate(row) if "\n" in v or "\r" in v]
        if spans:
            at = spans[0]
            column = header[at].strip() if header and at < len(header) else at + 1
            runs = "to the end of the file" if last == start else f"on to line {last}"
            raise SchemeError(
                f"a quoted value is not closed on its line (it runs {runs}); "
                "close the quote or remove the stray '\"'",
                file=str(path),
                line=start,
                column=column,
            )
        if header is None:
            header = row
        yield start, row
