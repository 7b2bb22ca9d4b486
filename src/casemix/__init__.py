"""casemix: CHS-DRG and DIP grouping, weights and global-budget payment simulation.

Public API (imported lazily so ``import casemix`` stays fast and compiles
nothing):

- ``casemix.group(cases, scheme=..., engine="batch"|"reference")``
- ``casemix.load_scheme(name_or_path)``, ``casemix.schemes()``
- ``casemix.read_cases(data, mapping=None)``
- ``casemix.check(cases, scheme=...)`` (per-hospital data check before settlement)
- ``casemix.compute_weights``, ``casemix.Policy``, ``casemix.settle.settle``, ``casemix.compare``
- ``casemix.hospital_indicators``, ``casemix.flags``, ``casemix.build_report``
- ``casemix.synth_cases`` (synthetic cases for demos and benchmarks)
- sub-packages: ``casemix.dip`` (DIP), ``casemix.benefits`` (patient-side cascade),
  ``casemix.dask`` (distributed)
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
    "check": "casemix.check",
    "compute_weights": "casemix.weights",
    "Policy": "casemix.budget",
    "compare": "casemix.settle",
    "Settlement": "casemix.settle",
    "Weights": "casemix.weights",
    "synth_cases": "casemix.synth",
    "hospital_indicators": "casemix.indicators",
    "drg_indicators": "casemix.indicators",
    "grouping_riv": "casemix.indicators",
    "low_risk_drgs": "casemix.indicators",
    "flags": "casemix.monitor",
    "MonitorParams": "casemix.monitor",
    "build_report": "casemix.report",
}

__all__ = ["CasemixError", "InputError", "PolicyError", "SchemeError", "__version__", *_LAZY]


#: sub-packages reachable as attributes (``casemix.dip``) without an explicit import
_SUBPACKAGES = (
    "dip",
    "benefits",
    "dask",
    "settle",
    "weights",
    "budget",
    "indicators",
    "monitor",
    "report",
    "synth",
    "cases",
    "scheme",
    "drg",
)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"casemix.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'casemix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
