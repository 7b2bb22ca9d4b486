"""The fuzz suite's two speeds: each property runs briefly in CI and long behind ``-m slow``.

Use::

    test_prop, test_prop_long = fuzz(_prop, data=st.data())

``_prop`` is the property; the first test runs ``QUICK`` examples (the whole
fuzz suite stays under a minute), the second ``LONG`` examples and is marked
``slow`` (skipped unless ``pytest -m slow``).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

QUICK = 25
LONG = 600
_COMMON = dict(
    deadline=None,
    derandomize=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


def fuzz(prop, *, quick: int = QUICK, long: int = LONG, **strategies):
    """(quick test, long test) of the property ``prop`` over ``strategies`` (keyword arguments)."""
    fast = settings(max_examples=quick, **_COMMON)(given(**strategies)(prop))
    slow = pytest.mark.slow(settings(max_examples=long, **_COMMON)(given(**strategies)(prop)))
    return fast, slow
