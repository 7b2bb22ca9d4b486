"""DIP (按病种分值付费, Big Data Diagnosis-Intervention Packet) in casemix.

Public API:

- :func:`load_catalog` / :func:`catalogs`: DIP catalog folders
  (``docs/dip-catalog.md``), shipped ones in ``grouping_tables/``;
- :func:`group`: cases → the input plus ``dip_group``, ``dip_type``,
  ``dip_score``, ``status``, ``reason``, ``warnings`` (batch engine by
  default, the readable reference engine on request; both give the same
  answer);
- :func:`build_catalog`: a catalog from a cost history (core groups by
  count threshold or coverage, related-procedure splits, comprehensive
  groups);
- :func:`scores`, :func:`hospital_coefficients`, :func:`subtype_coefficients`:
  group scores and adjustment coefficients;
- :func:`settle` and the point-value functions of :mod:`casemix.dip.settle`.

The rules and their sources are in ``docs/dip-rules.md``.
"""

from __future__ import annotations

from casemix.dip.build import build_catalog
from casemix.dip.catalog import ATTRIBUTES, Catalog, write_catalog
from casemix.dip.grouping import (
    DEFAULT_CATALOG,
    catalogs,
    group,
    load_catalog,
)
from casemix.dip.grouping import canonical as canonical
from casemix.dip.grouping import is_catalog as is_catalog
from casemix.dip.grouping import outcomes as outcomes
from casemix.dip.grouping import prepare as prepare

# binding the functions keeps ``casemix.dip.scores`` / ``.settle`` meaning the
# functions (the submodules stay importable by full name)
from casemix.dip.scores import hospital_coefficients, scores, subtype_coefficients
from casemix.dip.settle import Bonus, settle

__all__ = [
    "ATTRIBUTES",
    "Bonus",
    "Catalog",
    "build_catalog",
    "catalogs",
    "group",
    "hospital_coefficients",
    "load_catalog",
    "scores",
    "settle",
    "subtype_coefficients",
    "write_catalog",
    "DEFAULT_CATALOG",
]
