"""casemix._threads: nogil kernels over row ranges give the one-call answer (issue 16)."""

from __future__ import annotations

import threading

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests import strategies_drg as S
from tests.tiny_scheme import write

from casemix import _threads
from casemix.drg.batch import group_frame
from casemix.drg.kernel import BLOCK


@given(n=st.integers(0, 5000), parts=st.integers(1, 40), align=st.sampled_from([1, 7, 64, 1024]))
def test_ranges_cover_the_rows_once_in_order(n, parts, align):
    got = _threads.ranges(n, parts, align)
    if n == 0:
        assert got == []
        return
    assert len(got) <= parts
    assert [a for a, _ in got] == [0] + [b for _, b in got[:-1]]  # contiguous
    assert got[-1][1] == n
    assert all(b > a for a, b in got)
    assert all(a % align == 0 for a, _ in got)


class _Kernel:
    """Stands for a nogil numba dispatcher: records the ranges it is called on, and from which thread."""

    def __init__(self, compiled: bool) -> None:
        self.signatures = ["(int64, int64)"] if compiled else []
        self.calls: list[tuple[int, int, int]] = []
        self.lock = threading.Lock()

    def __call__(self, start, stop, out):
        with self.lock:
            self.calls.append((start, stop, threading.get_ident()))
        out[start:stop] += 1


@pytest.mark.parametrize("compiled", [True, False])
def test_run_ranges_calls_each_row_once(monkeypatch, compiled):
    import numpy as np

    monkeypatch.setattr(_threads, "threads", lambda: 3)
    monkeypatch.setattr(_threads, "MIN_ROWS_PER_THREAD", 10)
    kernel = _Kernel(compiled)
    out = np.zeros(1000, dtype=np.int64)
    _threads.run_ranges(kernel, len(out), out, align=8)
    assert (out == 1).all()
    assert len(kernel.calls) == 12  # 3 threads x RANGES_PER_THREAD
    assert all(a % 8 == 0 for a, _, _ in kernel.calls)
    if not compiled:  # the first range compiles in the calling thread, alone
        assert kernel.calls[0][:2] == (0, 80) and kernel.calls[0][2] == threading.get_ident()


def test_small_input_is_one_call_in_this_thread(monkeypatch):
    import numpy as np

    monkeypatch.setattr(_threads, "threads", lambda: 2)
    kernel = _Kernel(True)
    out = np.zeros(100, dtype=np.int64)
    _threads.run_ranges(kernel, 100, out)
    assert kernel.calls == [(0, 100, threading.get_ident())]
    _threads.run_ranges(kernel, 0, out)  # nothing to do: no call
    assert len(kernel.calls) == 1


def test_an_error_in_a_range_is_raised(monkeypatch):
    import numpy as np

    monkeypatch.setattr(_threads, "threads", lambda: 2)
    monkeypatch.setattr(_threads, "MIN_ROWS_PER_THREAD", 1)

    def kernel(start, stop, out):
        if start > 0:
            raise ValueError("bad range")

    kernel.signatures = ["x"]
    with pytest.raises(ValueError, match="bad range"):
        _threads.run_ranges(kernel, 10, np.zeros(10))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from casemix.scheme import load_scheme

    return load_scheme(write(tmp_path_factory.mktemp("tiny-threads")))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_grouping_on_many_threads_equals_one_call(tiny, monkeypatch, data):
    """Encoding, code checks and the grouping kernel over 3 threads, ranges of a few blocks."""
    rows = data.draw(st.lists(S.cases(S.pools(tiny)), min_size=1, max_size=30))
    canonical = S.frame(rows)
    big = pl.concat([canonical] * (-(-(3 * BLOCK + 17) // canonical.height)))
    monkeypatch.setattr(_threads, "threads", lambda: 1)
    one = group_frame(big, tiny, warnings=True)
    monkeypatch.setattr(_threads, "threads", lambda: 3)
    monkeypatch.setattr(_threads, "MIN_ROWS_PER_THREAD", 1)
    many = group_frame(big, tiny, warnings=True)
    assert many.equals(one)
    assert one.height == big.height
