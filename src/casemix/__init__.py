"""casemix: CHS-DRG and DIP grouping, weights and global-budget payment simulation.

Public API (imported lazily so ``import casemix`` stays fast and compiles
nothing):

- ``casemix.group(cases, scheme=..., engine="batch"|"reference")``
- ``casemix.load_scheme(name_or_path)``, ``casemix.schemes()``
- ``casemix.read_cases(data, mapping=None)``
- errors: ``CasemixError``, ``SchemeError``, ``InputError``, ``PolicyError``
"""

from __future__ import annotations

import importlib
from typing import Any

from casemix.errors import CasemixError, InputError, PolicyError, SchemeError

__version__ = "0.1.0"

# public name -> module that defines it; resolved on first attribute access
_LAZY = {
    "group": "casemix.drg",
    "load_scheme": "casemix.scheme",
    "schemes": "casemix.scheme",
    "read_cases": "casemix.cases",
    "compute_weights": "casemix.weights",
    "Policy": "casemix.budget",
    "settle": "casemix.settle",
    "compare": "casemix.settle",
}

__all__ = ["CasemixError", "InputError", "PolicyError", "SchemeError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'casemix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
