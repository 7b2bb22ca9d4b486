"""A synthetic region: hospitals by level and their discharges, for demos and benchmarks.

Deterministic by seed; numba loops over row ranges on a few threads, with counter-based
random numbers, so the same call makes a 1,000-row demo or a 10-million-row
benchmark, whatever the number of threads.
Each case is aimed at a DRG of the scheme (principal diagnosis and
procedures from the lists its rules read, the CC/MCC its severity split
needs); costs come from published relative weights (Harbin 2024) × a base
rate × the hospital level's coefficient.  Every parameter and its source:
``docs/synthetic-region.md`` and :class:`Region`.
"""

from __future__ import annotations

from casemix.synth.cases import synth_cases
from casemix.synth.plan import reference_weights
from casemix.synth.region import INSURANCE_TYPES, LEVELS, Region

__all__ = ["INSURANCE_TYPES", "LEVELS", "Region", "reference_weights", "synth_cases"]
