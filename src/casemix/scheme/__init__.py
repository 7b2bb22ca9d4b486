"""DRG schemes as data: loading, validation and the shipped schemes.

A scheme is a folder of tables (``docs/scheme-format.md``); the engine
never knows a group by name.  ``load_scheme`` accepts the name of a
shipped scheme (``casemix.schemes()``) or any folder path, and caches the
result per process.
"""

from __future__ import annotations

import functools
from pathlib import Path

from casemix.errors import InputError, SchemeError
from casemix.scheme.load import load_folder
from casemix.scheme.model import Adrg, Drg, Mdc, Scheme, ValidityCheck, adrg_kind

__all__ = [
    "Adrg",
    "Drg",
    "Mdc",
    "Scheme",
    "ValidityCheck",
    "adrg_kind",
    "load_scheme",
    "schemes",
    "tables_root",
    "DEFAULT_SCHEME",
]

#: the scheme used when none is named
DEFAULT_SCHEME = "chs-drg-1.1"


def tables_root() -> Path:
    """The folder of shipped schemes and catalogs (``grouping_tables/``, inside the package)."""
    return Path(__file__).resolve().parent.parent / "grouping_tables"


def schemes() -> list[str]:
    """Names of the DRG schemes shipped in ``grouping_tables/``."""
    root = tables_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "scheme.toml").is_file())


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, stamp: float) -> Scheme:
    return load_folder(path)


def _stamp(folder: Path) -> float:
    # reload when any table changes, so an analyst editing a variant sees the edit
    return max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0.0)


def load_scheme(name_or_path: str | Path | Scheme = DEFAULT_SCHEME) -> Scheme:
    """Load a shipped scheme by name, or any scheme folder by path.

    Parameters
    ----------
    name_or_path
        A name from :func:`schemes` (e.g. ``"chs-drg-1.1"``, the default), a folder path,
        or an already loaded :class:`Scheme` (returned as is).

    Returns
    -------
    Scheme
        Validated and cached per process (reloaded when a table changes).

    Raises
    ------
    SchemeError
        When the name is unknown or the folder is malformed (file, line, column).
    InputError
        When ``name_or_path`` is not a name, a path or a Scheme (e.g. None).
    """
    if isinstance(name_or_path, Scheme):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise InputError(
            f"scheme must be a shipped scheme name ({', '.join(schemes()) or 'none'}), "
            f"a scheme folder or a loaded Scheme; got {name_or_path!r}"
        )
    candidate = Path(name_or_path)
    if not candidate.is_dir():
        shipped = tables_root() / str(name_or_path)
        if (shipped / "scheme.toml").is_file():
            candidate = shipped
        else:
            raise SchemeError(
                f"no scheme named {str(name_or_path)!r}: shipped schemes are "
                f"{', '.join(schemes()) or '(none)'}; or pass a folder path"
            )
    candidate = candidate.resolve()
    return _load_cached(str(candidate), _stamp(candidate))
