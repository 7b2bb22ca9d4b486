"""casemix._trim fences on hand-computed groups where the fences (and the SD's ddof) decide."""

from __future__ import annotations

import numpy as np
import pytest

from casemix._trim import Trim, trim

# Q1 (type 7, h = 1.25) = 20 + 0.25·10 = 22.5; Q3 (h = 3.75) = 40 + 0.75·10 = 47.5; IQR = 25
IQR_GROUP = np.array([5.0, 20.0, 30.0, 40.0, 50.0, 70.0])


def _kept(values, t, keys=None):
    keys = np.zeros(values.size, np.int64) if keys is None else keys
    kept, whole = trim(values, keys, int(keys.max()) + 1, t)
    return kept.tolist(), whole.tolist()


@pytest.mark.parametrize(
    "a, b, kept",
    [
        # lower 22.5 − 0.5·25 = 10 drops 5; upper 47.5 + 1.5·25 = 85 keeps 70
        (0.5, 1.5, [False, True, True, True, True, True]),
        # lower 22.5 − 1.5·25 = −15 keeps 5; upper 47.5 + 0.5·25 = 60 drops 70
        (1.5, 0.5, [True, True, True, True, True, False]),
        # both 0.5: 10 .. 60
        (0.5, 0.5, [False, True, True, True, True, False]),
        # both 1.5: −15 .. 85
        (1.5, 1.5, [True] * 6),
        # 0: exactly Q1 .. Q3 = 22.5 .. 47.5
        (0.0, 0.0, [False, False, True, True, False, False]),
    ],
)
def test_iqr_fences_use_a_below_and_b_above(a, b, kept):
    assert _kept(IQR_GROUP, Trim("iqr", a=a, b=b)) == (kept, [])


def test_iqr_default_is_half_below_one_and_a_half_above():
    assert _kept(IQR_GROUP, Trim("iqr")) == ([False, True, True, True, True, True], [])


def test_a_cost_on_the_fence_is_kept():
    # 10 is exactly Q1 − 0.5·IQR and 85 exactly Q3 + 1.5·IQR
    v = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 85.0])
    # Q1 = 22.5, Q3 = 40 + 0.75·10 = 47.5 again: fences 10 .. 85
    assert _kept(v, Trim("iqr")) == ([True] * 6, [])


# [0, 0, 0, 0, 10]: mean 2, squared deviations 4·4 + 64 = 80;
# sample SD (ddof 1) √20 = 4.472, population SD (ddof 0) √16 = 4
SD_GROUP = np.array([0.0, 0.0, 0.0, 0.0, 10.0])


@pytest.mark.parametrize(
    "k, kept",
    [
        (1.9, [True] * 5),  # 2 + 1.9·4.472 = 10.50 keeps 10 (ddof 0: 9.6 drops it)
        (2.0, [True] * 5),  # 2 + 8.944 = 10.94
        (1.5, [True, True, True, True, False]),  # 2 + 6.708 = 8.71 drops 10
    ],
)
def test_sd_fence_is_the_sample_sd(k, kept):
    assert _kept(SD_GROUP, Trim("sd", k=k)) == (kept, [])


def test_sd_lower_fence():
    # [10, 10, 10, 10, 0]: mean 8, sample SD √20; k = 1.5: lower 8 − 6.708 = 1.29 drops 0;
    # k = 1.9: 8 − 8.497 = −0.50 keeps it
    v = np.array([10.0, 10.0, 10.0, 10.0, 0.0])
    assert _kept(v, Trim("sd", k=1.5)) == ([True, True, True, True, False], [])
    assert _kept(v, Trim("sd", k=1.9)) == ([True] * 5, [])


def test_fences_are_per_group_and_a_group_that_would_empty_keeps_all():
    # group 1 is IQR_GROUP, group 0 a single case (no SD: kept), group 2 [1, 1000]:
    # Q1 = 250.75, Q3 = 750.25, fences with a = b = 0 drop both -> kept whole, reported
    v = np.concatenate([[7.0], IQR_GROUP, [1.0, 1000.0]])
    keys = np.array([0] + [1] * 6 + [2, 2])
    kept, whole = _kept(v, Trim("iqr", a=0.0, b=0.0), keys)
    assert kept == [True, False, False, True, True, False, False, True, True]
    assert whole == [2]
    kept, whole = _kept(v, Trim("sd", k=1.5), keys)
    assert kept == [True] * 9 and whole == []


def test_percentile_fences_type_7():
    # 11 values 0..100 step 10: P10 = 10, P90 = 90 (h = 1 and 9 exactly); P5 = 5, P95 = 95
    v = np.arange(0.0, 101.0, 10.0)
    assert _kept(v, Trim("percentile", lower=0.10, upper=0.90))[0] == [False] + [True] * 9 + [False]
    assert _kept(v, Trim("percentile", lower=0.05, upper=0.95))[0] == [False] + [True] * 9 + [False]
    assert _kept(v, Trim("percentile", lower=0.0, upper=0.90))[0] == [True] * 10 + [False]
    assert _kept(v, Trim("none"))[0] == [True] * 11


def test_describe_and_bad_rules():
    from casemix.errors import InputError

    assert Trim("iqr", a=0.5, b=1.5).describe() == "Q1 − 0.5·IQR, Q3 + 1.5·IQR"
    assert Trim("sd", k=3).describe() == "mean ± 3·SD"
    assert Trim().describe() == "percentile 2.5/97.5"
    assert Trim("none").describe() == "none"
    for bad in (
        {"method": "mad"},
        {"lower": 0.5, "upper": 0.5},
        {"k": -1},
        {"a": -0.1},
        {"b": -2},
        {"upper": 1.1},
    ):
        with pytest.raises(InputError):
            Trim(**bad)


def test_bad_rules_are_named_exactly():
    from casemix.errors import InputError

    with pytest.raises(
        InputError, match=r"^trim method must be one of none, percentile, sd, iqr; got 'mad'$"
    ):
        Trim("mad")
    with pytest.raises(
        InputError, match=r"^trim percentiles need 0 <= lower < upper <= 1; got lower=0\.5, upper=0\.5$"
    ):
        Trim(lower=0.5, upper=0.5)
    with pytest.raises(InputError, match=r"^trim multiples k, a, b must be >= 0; got k=-1, a=0\.5, b=1\.5$"):
        Trim(k=-1)
    # the bounds themselves are allowed: lower 0, upper 1, multiples 0
    assert Trim(lower=0.0, upper=1.0, k=0.0, a=0.0, b=0.0).describe() == "percentile 0/100"
    assert Trim("sd", k=0.5).describe() == "mean ± 0.5·SD"


def test_none_keeps_an_outlier_the_fences_would_drop():
    v = np.array([1.0, 1.0, 2.0, 1.0, 1000.0])
    kept, whole = trim(v, np.zeros(5, np.int64), 1, Trim("none"))
    assert kept.dtype == bool and kept.tolist() == [True] * 5
    assert whole.dtype == np.int64 and whole.tolist() == []
    # the same group under the default IQR fences loses 1000 (Q3 = 2, IQR = 1: upper 3.5)
    assert _kept(v, Trim("iqr"))[0] == [True, True, True, True, False]


def test_no_cases():
    for t in (Trim("none"), Trim("iqr"), Trim("sd"), Trim()):
        kept, whole = trim(np.zeros(0), np.zeros(0, np.int64), 3, t)
        assert kept.dtype == bool and kept.size == 0
        assert whole.dtype == np.int64 and whole.size == 0


def test_sd_fence_ddof_1_not_2():
    # SD_GROUP with ddof 2 would be √(80/3) = 5.164: k = 1.7 gives 2 + 8.78 = 10.78 and keeps 10;
    # the sample SD gives 2 + 1.7·4.472 = 9.60 and drops it
    assert _kept(SD_GROUP, Trim("sd", k=1.7)) == ([True, True, True, True, False], [])


def test_a_group_id_without_cases_is_not_reported():
    # ids 0 and 2 have cases, id 1 none: only a group that has cases can be "kept whole"
    v = np.array([1.0, 1000.0, 5.0, 6.0, 7.0])
    keys = np.array([0, 0, 2, 2, 2])
    kept, whole = trim(v, keys, 3, Trim("iqr", a=0.0, b=0.0))
    # group 0: Q1 = 250.75, Q3 = 750.25 drop both -> kept whole; group 2: 5.5 .. 6.5 keeps 6
    assert kept.tolist() == [True, True, False, True, False]
    assert whole.tolist() == [0]


def test_a_fence_that_is_not_a_number_is_no_fence():
    # the mean of 1e308 and 1.5e308 overflows float64, and so does the SD: the lower fence
    # inf − 1·inf is NaN. Like the SD of a single case, that group has no fence and keeps
    # both cases unreported
    v = np.array([1e308, 1.5e308, 1.0, 2.0, 30.0])
    keys = np.array([0, 0, 1, 1, 1])
    kept, whole = trim(v, keys, 2, Trim("sd", k=1.0))
    # group 1: mean 11, sample SD √((100 + 81 + 361) / 2) = √271 = 16.46: 1 and 2 are inside,
    # 30 is above 11 + 16.46 = 27.46
    assert kept.tolist() == [True, True, True, True, False]
    assert whole.tolist() == []
    # an infinite cost: Q1 = Q3 = inf (interpolating towards inf), IQR = inf − inf = NaN, both
    # fences NaN: no fence either
    v = np.array([1.0, np.inf, 1.0, 2.0, 30.0])
    kept, whole = trim(v, keys, 2, Trim("iqr", a=0.0, b=0.0))
    # group 1: Q1 = 1.5, Q3 = 16 drop 1 and 30
    assert kept.tolist() == [True, True, False, True, False]
    assert whole.tolist() == []


def test_a_cost_on_the_fence_is_kept_in_any_currency_unit():
    # [2, 4, 6] and the same costs in tens of yuan [0.2, 0.4, 0.6]: Q1 = 3, Q3 = 5, IQR = 2,
    # fences with a = b = 0.5 are 2 .. 6 — both ends lie on them. In binary floating point
    # Q1 − 0.5·IQR of the tenths comes out 0.20000000000000007, above the cost 0.2; the
    # relative tolerance keeps that cost, as it keeps 2.
    for unit in (1.0, 0.1):
        v = np.array([2.0, 4.0, 6.0]) if unit == 1.0 else np.array([0.2, 0.4, 0.6])
        assert _kept(v, Trim("iqr", a=0.5, b=0.5)) == ([True] * 3, []), unit


def test_a_group_of_zero_costs_lies_on_its_fences():
    # every fence is exactly 0 and so is the tolerance (relative to the fences): a cost equal
    # to a fence is inside (<=, >=), the group is neither trimmed nor reported
    v = np.zeros(4)
    for t in (Trim("iqr"), Trim("sd"), Trim(), Trim("percentile", lower=0.0, upper=1.0)):
        assert _kept(v, t) == ([True] * 4, []), t


def test_an_infinite_fence_gives_the_other_fence_no_tolerance():
    # [0.5, 1, 1, 1e308, 1.7e308], a = 0: Q1 = 1 is the lower fence; Q3 + 1.5·IQR overflows
    # to inf. The tolerance is relative to the larger fence, here infinite: none at all, so the
    # lower fence stays exactly 1 and drops 0.5 (a tolerance of 1 would keep it)
    v = np.array([0.5, 1.0, 1.0, 1e308, 1.7e308])
    assert _kept(v, Trim("iqr", a=0.0, b=1.5)) == ([False, True, True, True, True], [])
