"""casemix.dask on a local Dask cluster: the same answer as in memory, to the fen.

One LocalCluster (2 worker processes, 1 thread each) serves the whole
module.  The data mixes valid cases, a block of cases that cannot be
grouped, readmissions whose two stays sit in different partitions and
partitionings of 1, 3 and 16 include an empty
partition and a partition of invalid cases only.
"""

from __future__ import annotations

import dataclasses
import os
import re
from decimal import Decimal
from itertools import pairwise

import numpy as np
import pytest

dd = pytest.importorskip(
    "dask.dataframe",
    reason="casemix.dask tests need dask[dataframe] "
    "(pip install 'casemix[dask]'; the README's test command "
    "pip install -e '.[test,dask]' installs it)",
)
distributed = pytest.importorskip(
    "distributed",
    reason="casemix.dask tests need distributed "
    "(pip install 'casemix[dask]'; the README's test command "
    "pip install -e '.[test,dask]' installs it)",
)

import dask  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from polars.testing import assert_frame_equal  # noqa: E402

import casemix  # noqa: E402
import casemix.dask as cd  # noqa: E402
from casemix.budget import Corridors, Elastic, HighCost, Policy, Readmission, shipped_policy  # noqa: E402
from casemix.dask._cluster import worker_env  # noqa: E402
from casemix.errors import InputError, PolicyError  # noqa: E402
from casemix.payment.monthly import MonthlyConfig  # noqa: E402
from casemix.payment.new_tech import NewTechConfig  # noqa: E402
from casemix.payment.outliers import OutliersConfig  # noqa: E402
from casemix.payment.special_cases import SpecialCasesConfig  # noqa: E402
from casemix.settle import base_volumes, settle  # noqa: E402
from casemix.synth import synth_cases  # noqa: E402
from casemix.weights import compute_weights  # noqa: E402
from strategies import rule_cases  # noqa: E402

SCHEME = "casemix-demo"
N_VALID, N_INVALID, N_READMIT = 1500, 40, 60
GROUP_COLS = ["mdc", "adrg", "drg", "severity", "status", "reason", "warnings"]
MONEY = [
    "payment_fen",
    "point_payment_fen",
    "at_cost_fen",
    "reserve_fen",
    "prepaid_fen",
    "clearing_fen",
    "cost_fen",
    "surplus_fen",
    "budget_fen",
    "point_budget_fen",
]


@pytest.fixture(scope="module")
def client():
    # what casemix.dask.connect starts: numba's on-disk cache warmed here, before the workers
    # start, so that they only read it; one thread per worker, glibc's malloc thresholds
    c = cd.connect("local:2")
    yield c
    c.close()


def test_local_cluster_takes_no_fixed_port():
    # the scheduler's HTTP routes used to bind 8787 (dashboard off): with that port taken, as
    # by a notebook's cluster, every connect warned "Port 8787 is already in use"
    import socket
    import warnings

    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 8787))
        taken.listen()
    except OSError:
        pass  # already taken by someone else: the same situation
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with cd.connect("local:1", warm=False) as c:
                port = c.cluster.scheduler.http_server.port
        assert port != 8787
        assert not [w for w in seen if "8787" in str(w.message)]
    finally:
        taken.close()


def _cases() -> pd.DataFrame:
    """Valid cases, then a block that cannot be grouped, then readmissions of earlier cases."""
    base = synth_cases(SCHEME, N_VALID + N_INVALID, seed=11, invalid_share=0.02)
    rng = np.random.default_rng(5)
    start = np.datetime64("2024-01-01") + rng.integers(0, 300, base.height).astype("timedelta64[D]")
    los = np.maximum(base["los"].fill_null(1).to_numpy(), 1).astype("int64")
    base = base.with_columns(
        pl.Series("patient_id", [f"P{i:05d}" for i in range(base.height)]),
        pl.Series("admission_date", start.astype("datetime64[D]")).cast(pl.Date),
        pl.Series("discharge_date", (start + los.astype("timedelta64[D]"))).cast(pl.Date),
    )
    # the last N_INVALID rows: no diagnosis at all, so no group (an all-invalid partition)
    invalid = base.slice(N_VALID).with_columns(
        pl.lit(None, pl.String).alias("pdx"), pl.lit([], pl.List(pl.String)).alias("sdx")
    )
    valid = base.slice(0, N_VALID)
    # readmissions: copies of early cases 5 days after their discharge, same hospital and codes
    again = valid.slice(0, N_READMIT).with_columns(
        (pl.lit("R") + pl.col("case_id")).alias("case_id"),
        (pl.col("discharge_date") + pl.duration(days=5)).alias("admission_date"),
        (pl.col("discharge_date") + pl.duration(days=9)).alias("discharge_date"),
    )
    frame = pl.concat([valid, invalid, again])
    return frame.to_pandas(use_pyarrow_extension_array=True)


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return _cases()


def _slices(k: int) -> list[tuple[int, int]]:
    """k partitions of the rows; from 3 on, one is empty and (from 4) one is the invalid block."""
    n = N_VALID + N_INVALID + N_READMIT
    if k == 1:
        return [(0, n)]
    if k == 3:
        return [(0, N_VALID), (N_VALID, N_VALID), (N_VALID, n)]
    bounds = np.linspace(0, N_VALID, k - 2).astype(int).tolist()
    parts = list(zip(bounds[:-1], bounds[1:], strict=True))
    parts.insert(1, (bounds[1], bounds[1]))
    return parts + [(N_VALID, N_VALID + N_INVALID), (N_VALID + N_INVALID, n)]


def _take(frame: pd.DataFrame, bounds: tuple[int, int]) -> pd.DataFrame:
    return frame.iloc[bounds[0] : bounds[1]]


def _dask(frame: pd.DataFrame, k: int):
    parts = _slices(k)
    assert sum(b - a for a, b in parts) == len(frame)
    return dd.from_map(_take, [frame] * len(parts), parts, meta=frame.iloc[:0], enforce_metadata=False)


def _policy(cases: pd.DataFrame, **changes) -> Policy:
    budget = round(float(cases["total_cost"].sum()) * 0.9)
    # readmissions across hospitals are refused on Dask (test_errors_name_the_row)
    changes.setdefault("readmission", Readmission(same_hospital=True))
    return Policy.demo().replace(budget=budget, **changes)


@pytest.fixture(scope="module")
def grouped(cases) -> pd.DataFrame:
    return casemix.group(cases, scheme=SCHEME)


def _pl(frame: pd.DataFrame) -> pl.DataFrame:
    return pl.from_pandas(frame.reset_index(drop=True))


def _same(mem: pd.DataFrame, dist: pd.DataFrame, *, exact: list[str]) -> None:
    """Integer (fen) and text columns equal; floats equal to 1e-12 relative."""
    a, b = _pl(mem), _pl(dist)
    assert a.columns == b.columns
    assert a.height == b.height
    for c in a.columns:
        if c in exact or not a.schema[c].is_float():
            assert a[c].equals(b[c]), c
    assert_frame_equal(a, b, check_dtypes=False, rel_tol=1e-12, abs_tol=1e-9)


@pytest.mark.parametrize("k", [1, 3, 16])
def test_group_equals_in_memory(client, cases, grouped, k):
    ddf = _dask(cases, k)
    assert ddf.npartitions == k
    out = cd.group(ddf, scheme=SCHEME)
    assert list(out.columns) == list(grouped.columns)
    got = out.compute()
    assert len(got) == len(cases)
    for c in GROUP_COLS:
        assert got[c].astype(str).tolist() == grouped[c].astype(str).tolist(), c
    assert got["case_id"].tolist() == cases["case_id"].tolist()
    # the invalid block really is invalid, so that partition holds no grouped case
    assert set(got["drg"].iloc[N_VALID : N_VALID + N_INVALID]) <= {"0000", ""}


def test_building_the_graph_warns_nothing(cases):
    # Dask's made-up meta rows group to nothing; that is not the user's data, so no warning
    import warnings

    from casemix.errors import LowGroupingRateWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", LowGroupingRateWarning)
        cd.group(_dask(cases, 3), scheme=SCHEME)


def test_dip_group_equals_in_memory(client, cases):
    # a DIP catalog goes through casemix.group's dispatch; an empty partition keeps the dtypes
    mem = casemix.group(cases, scheme="dip-demo")
    out = cd.group(_dask(cases, 16), scheme="dip-demo")
    added = [c for c in mem.columns if c not in cases.columns]
    assert list(out.columns) == list(mem.columns)
    got = out.compute()
    a, b = _pl(mem[added]), _pl(got[added])
    for c in added:
        assert a[c].cast(pl.String).equals(b[c].cast(pl.String)), c


@pytest.mark.parametrize("k", [1, 3, 16])
def test_settle_equals_in_memory(client, cases, grouped, k):
    weights = compute_weights(grouped)
    policy = _policy(cases)
    mem = settle(grouped, policy, weights=weights)
    ddf = cd.group(_dask(cases, k), scheme=SCHEME)
    dist = cd.settle(ddf, policy, weights=weights)
    got = dist.cases.compute()
    _same(mem.cases, got, exact=["payment_fen"])
    _same(mem.hospitals, dist.hospitals, exact=MONEY)
    _same(mem.region, dist.region, exact=MONEY + ["total_points", "pv_base", "pv_final"])
    assert mem.notes == dist.notes
    # the data exercise the cross-case rules
    assert got["readmission"].sum() > 0
    assert (got["rule"] == "ungroupable").sum() >= N_INVALID
    assert int(got["payment_fen"].sum()) == policy.budget_fen


def test_settle_policy_variant(client, cases, grouped):
    # cost-converted points of ungroupable cases, reserve, prepayment
    weights = compute_weights(grouped)
    policy = _policy(cases, ungroupable="points", quality_reserve=0.05, prepayment_share=0.9)
    mem = settle(grouped, policy, weights=weights)
    dist = cd.settle(cd.group(_dask(cases, 3), scheme=SCHEME), policy, weights=weights, persist=False)
    _same(mem.cases, dist.cases.compute(), exact=["payment_fen"])
    _same(mem.hospitals, dist.hospitals, exact=MONEY)
    _same(mem.region, dist.region, exact=MONEY)
    assert (dist.hospitals["prepaid_fen"] > 0).all()


def test_settle_points_column_without_case_id(client, cases, grouped):
    # DIP-style: precomputed points (weights give reference costs); cases numbered over all rows
    # hospital_id categorical: the shuffle by hospital must cope with dictionary dtypes
    g = grouped.drop(columns=["case_id"]).assign(
        pts=np.round(np.random.default_rng(2).gamma(2.0, 40.0, len(grouped)), 4),
        hospital_id=grouped["hospital_id"].astype(str).astype("category"),
    )
    policy = _policy(cases).replace(points_per_rw=1.0)
    weights = compute_weights(grouped)
    mem = settle(g, policy, points="pts", weights=weights)
    dist = cd.settle(_dask(g, 3), policy, points="pts", weights=weights)
    _same(mem.cases, dist.cases.compute(), exact=["payment_fen"])
    _same(mem.hospitals, dist.hospitals, exact=MONEY)


def _pooled_policy(frame: pd.DataFrame, rates: dict[str, float] | None = None, **changes) -> Policy:
    """The shipped demo_pools policy (职工/居民, elastic point value, corridors), budgets = 98% of
    each pool's itemised fund cost, base rates ``rates``, and the changes."""
    policy = Policy.from_toml(shipped_policy("demo_pools"))
    fund = frame.groupby(frame["insurance_type"].astype(str))["fund_paid"].sum()
    pools = {
        name: dataclasses.replace(
            pool,
            budget=Decimal(round(0.98 * sum(float(fund.get(v, 0.0)) for v in pool.values))),
            rate_yuan=(rates or {}).get(name),
        )
        for name, pool in policy.pools.items()
    }
    changes.setdefault("readmission", Readmission(same_hospital=True))
    return policy.replace(pools=pools, budget=None, **changes)


@pytest.fixture(scope="module")
def featured(cases, grouped) -> pd.DataFrame:
    """The grouped cases with a new-technology cost (5% of cases) and audit deductions."""
    rng = np.random.default_rng(8)
    cost = grouped["total_cost"].astype(float).to_numpy()
    return grouped.assign(
        new_tech_cost=np.where(rng.random(len(grouped)) < 0.05, np.round(cost * 0.8, 2), 0.0),
        audit_deduction=np.where(rng.random(len(grouped)) < 0.1, 12.5, 0.0),
    )


def _same_settlement(mem, dist) -> pd.DataFrame:
    """Every table of two settlements equal (fen exactly); the Dask per-case frame, computed."""
    got = dist.cases.compute()
    _same(mem.cases, got, exact=[c for c in mem.cases.columns if c.endswith("_fen")])
    for name in ("hospitals", "region", "pool_hospitals", "pool_region", "monthly", "annual"):
        a, b = getattr(mem, name), getattr(dist, name)
        assert (a is None) == (b is None), name
        if a is not None:
            _same(a, b, exact=[c for c in a.columns if c.endswith("_fen")])
    assert mem.notes == dist.notes
    return got


@pytest.mark.parametrize("k", [3, 16])
def test_settle_every_feature_equals_in_memory(client, cases, featured, k):
    # pools, elastic point value, corridors, region-wide 特例单议 (listed and by cost, a binding
    # cap, listed order), 除外支付 from a column, monthly pre-settlement with deposits, readmissions,
    # outliers against the region's same-level group means
    weights = compute_weights(featured)
    listed = (*featured["case_id"].iloc[[3, 500, 1520]].tolist(), "no-such-case")
    policy = _pooled_policy(
        featured,
        special=SpecialCasesConfig(case_ids=listed, cost_multiple=1.6, order="listed"),
        new_tech=NewTechConfig(enabled=True, min_share=0.5),
        monthly=MonthlyConfig(enabled=True, scores={"H001": 80.0, "H002": 50.0}),
        outliers=OutliersConfig(reference="level_mean"),
    )
    volume = base_volumes(featured, policy, weights=weights)
    mem = settle(featured, policy, weights=weights, base_volume=volume)
    dist = cd.settle(_dask(featured, k), policy, weights=weights, base_volume=volume)
    got = _same_settlement(mem, dist)
    # the same-level means are the region's (a partition's own means would differ)
    standard = settle(
        featured, policy.replace(outliers=OutliersConfig()), weights=weights, base_volume=volume
    )
    assert (standard.cases["ref_cost"] != got["ref_cost"]).sum() > 100
    # the data exercise every rule: the cap binds, and approvals come from several partitions
    applied = int(re.search(r"special_cases: (\d+) of (\d+)", " ".join(dist.notes)).group(2))
    approved = got["rule"] == "special"
    assert approved.sum() == int(0.05 * int(got["left_out"].isna().sum())) < applied
    assert len(set(got.loc[approved, "hospital_id"])) > 1
    assert any(n.startswith("new_tech: ") and not n.startswith("new_tech: 0 ") for n in dist.notes)
    assert "1 listed special case(s) not among the cases" in dist.notes
    assert set(dist.pool_region["pool"]) == {"职工", "居民"}
    assert dist.pool_region["pv_floating"].notna().all()
    assert (dist.hospitals["corridor_fen"] != 0).any()
    assert len(dist.monthly) > len(dist.hospitals) and dist.annual["deposit_fen"].gt(0).any()
    assert got["readmission"].sum() > 0


def test_settle_rate_method_dip_cap_and_new_tech_codes(client, cases, featured):
    # 费率法 per pool, the DIP cap (5‰) on cost criteria, new technology from a code list read
    # from the procedure lists (which travel through the shuffle as "|"-strings)
    weights = compute_weights(featured)
    codes = pd.Series([c for x in featured["oproc"] for c in (x if x is not None else [])]).value_counts()
    frame = featured.drop(columns=["new_tech_cost"])
    policy = _pooled_policy(
        frame,
        {"职工": 12252.70, "居民": 9649.24},  # Harbin 2024's rates [docs/payment-budget.md]
        method="rate",
        elastic=Elastic(),
        corridors=Corridors(),
        special=SpecialCasesConfig(cost_multiple=1.5, pay="points"),
        new_tech=NewTechConfig(enabled=True, codes={codes.index[0]: 900.0, codes.index[3]: 400.0}),
    )
    mem = settle(frame, policy, weights=weights, scheme="dip")
    dist = cd.settle(_dask(frame, 3), policy, weights=weights, scheme="dip")
    got = _same_settlement(mem, dist)
    assert (got["rule"] == "special").sum() == int(0.005 * len(got)) > 0
    # the code list earned add-on points (DIP)
    plain = settle(frame, policy.replace(new_tech=NewTechConfig()), weights=weights, scheme="dip")
    assert (plain.cases["adjusted_points"] < mem.cases["adjusted_points"]).sum() > 0
    assert mem.region["budget_check"].isna().all()  # the fund's outlay is an outcome


@pytest.mark.parametrize("k, scheduler", [(1, None), (3, None), (16, None), (16, "threads")])
def test_settle_in_place_equals_in_memory(client, cases, grouped, k, scheduler):
    # no readmission pairs (no patient_id) and no monthly table: no case leaves its partition;
    # each hospital's sums run on from partition to partition in input order and its money is
    # split over its cases by the largest remainder placed across partitions (_allocate).  On
    # this module's cluster, and on Dask's threaded scheduler (what runs without a Client)
    weights = compute_weights(grouped)
    frame = grouped.drop(columns=["patient_id"])
    policy = _policy(cases)
    mem = settle(frame, policy, weights=weights)
    with dask.config.set(scheduler=scheduler, num_workers=2):
        got = _same_settlement(mem, cd.settle(_dask(frame, k), policy, weights=weights))
    assert int(got["payment_fen"].sum()) == policy.budget_fen
    assert "readmission rule skipped: no column patient_id" in mem.notes


@pytest.mark.parametrize("k", [3, 16])
def test_settle_in_place_every_feature_equals_in_memory(client, cases, featured, k):
    # pools, elastic point value, corridors, region-wide 特例单议, 除外支付 and same-level means
    # with the cases left where they are
    frame = featured.drop(columns=["patient_id"])
    weights = compute_weights(frame)
    policy = _pooled_policy(
        frame,
        special=SpecialCasesConfig(cost_multiple=1.6),
        new_tech=NewTechConfig(enabled=True, min_share=0.5),
        outliers=OutliersConfig(reference="level_mean"),
    )
    volume = base_volumes(frame, policy, weights=weights)
    mem = settle(frame, policy, weights=weights, base_volume=volume)
    got = _same_settlement(mem, cd.settle(_dask(frame, k), policy, weights=weights, base_volume=volume))
    assert (got["rule"] == "special").sum() > 0
    assert (mem.hospitals["corridor_fen"] != 0).any()
    # the rate method (费率法): no largest remainder, the same tables
    policy = _pooled_policy(
        frame, {"职工": 12252.70, "居民": 9649.24}, method="rate", elastic=Elastic(), corridors=Corridors()
    )
    mem = settle(frame, policy, weights=weights)
    _same_settlement(mem, cd.settle(_dask(frame, k), policy, weights=weights))


def _messy(grouped: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The grouped cases under other names (a Chinese alias and a mapped name), with bad values:
    costs malformed, negative and missing, a hospital missing, a malformed LOS (read as absent)."""
    frame = grouped.copy()
    cost = frame["total_cost"].astype(float).map(lambda x: f"{x:,.2f}").astype(object)
    cost.iloc[[10, 700]] = "abc"
    cost.iloc[[11, 1530]] = "-3.00"
    cost.iloc[[12]] = None
    hosp = frame["hospital_id"].astype(object)
    hosp.iloc[[13, 900]] = None
    los = frame["los"].astype(float).map(lambda x: "" if pd.isna(x) else f"{x:g}").astype(object)
    los.iloc[[14]] = "about a week"
    frame = frame.drop(columns=["total_cost", "hospital_id", "los"]).assign(
        住院总费用=cost.astype("string[pyarrow]"),
        院区=hosp.astype("string[pyarrow]"),
        los=los.astype("string[pyarrow]"),
    )
    return frame, {"院区": "hospital_id"}


def test_bad_values_and_mapping_as_in_memory(client, cases, grouped):
    # the bad-value rule of docs/cases.md: rows left out with null results and their reason,
    # counted per reason in the notes; nothing raised, nothing dropped
    weights = compute_weights(grouped)
    frame, mapping = _messy(grouped)
    policy = _policy(cases, special=SpecialCasesConfig(cost_multiple=2.0))
    mem = settle(frame, policy, weights=weights, mapping=mapping)
    for k in (3, 16):
        dist = cd.settle(_dask(frame, k), policy, weights=weights, mapping=mapping)
        got = _same_settlement(mem, dist)
    assert got["left_out"].notna().sum() == 7
    assert "malformed:total_cost: 2 row(s) left out" in dist.notes
    assert "malformed:los: 1 row(s) read as absent" in dist.notes
    # without case ids, the cases are numbered over the settled rows, as in memory
    frame = frame.drop(columns=["case_id"])
    mem = settle(frame, policy, weights=weights, mapping=mapping)
    _same_settlement(mem, cd.settle(_dask(frame, 3), policy, weights=weights, mapping=mapping))
    # the same with the cases left in their partitions (no readmission pairs): read once when
    # no region-wide rule applies, else narrowed first; bad rows stay where they are
    frame, mapping = _messy(grouped.drop(columns=["patient_id"]))
    for p in (policy, policy.replace(special=SpecialCasesConfig())):
        mem = settle(frame, p, weights=weights, mapping=mapping)
        for k in (3, 16):
            got = _same_settlement(mem, cd.settle(_dask(frame, k), p, weights=weights, mapping=mapping))
            assert got["left_out"].notna().sum() == 7


def test_every_partition_has_the_dtypes_of_the_meta(client, cases, grouped):
    # Dask trusts the meta of the per-case frame (no check per partition), so each partition,
    # the empty one and those with left-out rows too, must carry exactly its dtypes: ``pool`` is
    # an Enum of the policy's pool names in memory, so a dictionary column here, not text
    weights = compute_weights(grouped)
    frame, mapping = _messy(grouped)
    policy = _pooled_policy(frame, elastic=Elastic())
    for f in (frame, frame.drop(columns=["patient_id"])):  # an exchange by hospital; in place
        dist = cd.settle(_dask(f, 16), policy, weights=weights, mapping=mapping)
        meta = dist.cases._meta.dtypes
        assert isinstance(meta["pool"], pd.ArrowDtype)
        assert meta["pool"].pyarrow_dtype.value_type in (pa.string(), pa.large_string())
        assert isinstance(meta["rule"], pd.ArrowDtype)
        parts = dask.compute(*dist.cases.to_delayed())
        assert sum(len(p) for p in parts) == len(frame) and min(len(p) for p in parts) == 0
        assert sum(int(p["left_out"].notna().sum()) for p in parts) == 7
        for i, p in enumerate(parts):
            assert p.dtypes.to_dict() == meta.to_dict(), i
        got = pd.concat(parts)
        assert set(got["pool"].dropna().astype(str)) == {"职工", "居民"}


@settings(max_examples=60, deadline=None)
@given(rule_cases(), st.lists(st.integers(0, 40), max_size=4), st.randoms(use_true_random=False), st.data())
def test_special_review_from_parts_equals_in_memory(r, cuts, rnd, data):
    # the client's ranking of the partitions' applications (any split, parts in any order)
    # approves the rows the in-memory review approves
    from casemix.dask._settle import _approved
    from casemix.payment.special_cases import applications, approve, cap

    n = len(r["cost"])
    ids, cost, standard = np.array(r["case_id"]), np.array(r["cost"]), np.array(r["standard"])
    listed = tuple(data.draw(st.lists(st.sampled_from(r["case_id"]), max_size=4, unique=True)))
    config = SpecialCasesConfig(
        case_ids=listed,
        cost_multiple=data.draw(st.sampled_from([None, 1.0, 2.0])),
        cap_share=data.draw(st.sampled_from([None, 0.1, 0.3])),
        order=data.draw(st.sampled_from(["cost_ratio", "listed"])),
    )
    applied = applications(ids, cost, standard, None, config)
    want = approve(
        applied, cost, standard, ids, cap(n, config.share("drg")), order=config.order, listed=listed
    )
    # rows cut into input partitions, numbered (partition, row), applications sent in any order
    bounds = [0, *sorted(min(c, n) for c in cuts), n]
    key = np.concatenate([(j << 32) + np.arange(b - a) for j, (a, b) in enumerate(pairwise(bounds))])
    parts = []
    for a, b in pairwise(bounds):
        rows = np.arange(a, b)[applied[a:b]]
        parts.append(
            {
                "n": b - a,
                "key": key[rows],
                "id": ids[rows].tolist(),
                "cost": cost[rows],
                "standard": standard[rows],
            }
            | {"found": set(ids[a:b]) & set(listed)}
        )
    rnd.shuffle(parts)
    got, notes = _approved(parts, Policy.demo().replace(special=config), "drg")
    assert sorted(got.tolist()) == sorted(key[want].tolist())
    assert notes[-1].startswith(f"special_cases: {int(want.sum())} of {int(applied.sum())} application(s)")


def _cut(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    bounds = [0, *sorted(min(c, n) for c in cuts), n]
    return list(pairwise(bounds))


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(0, 1e6, allow_nan=False), max_size=700),
    groups=st.integers(1, 5),
    cuts=st.lists(st.integers(0, 700), max_size=6),
    seed=st.integers(0, 100),
)
def test_running_sums_across_partitions_are_bincounts(values, groups, cuts, seed):
    # a hospital's points summed partition after partition equal the in-memory sum bit for bit
    from casemix.dask._settle import _add

    x = np.asarray(values, dtype=np.float64)
    g = np.random.default_rng(seed).integers(0, groups, x.size)
    state = np.zeros(groups)
    for lo, hi in _cut(x.size, cuts):
        state = _add(state, g[lo:hi], x[lo:hi])
    assert state.tolist() == np.bincount(g, weights=x, minlength=groups).tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.integers(1, 12),
    st.lists(st.integers(0, 300), max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_running_sums_keyed_by_hospital_are_bincounts(values, groups, cuts, seed):
    # the chain keyed by the hospitals seen so far (each partition with its own sorted codes,
    # hospitals appearing late) gives the in-memory sums over the sorted ids, bit for bit
    from casemix.dask._settle import _add, _grown, _rekey

    x = np.asarray(values, dtype=np.float64)
    names = np.array([f"H{i:03d}" for i in np.random.default_rng(seed).integers(0, groups, x.size)])
    ids, state = np.array([], dtype=str), np.zeros(0)
    for lo, hi in _cut(x.size, cuts):
        local, code = np.unique(names[lo:hi], return_inverse=True)
        ids, before, here = _rekey(ids, local.tolist())
        state = _add(_grown(state, before, 1, ids.size), here[code], x[lo:hi])
    want, g = np.unique(names, return_inverse=True)
    assert ids.tolist() == want.tolist()
    assert state.tolist() == np.bincount(g, weights=x, minlength=want.size).tolist()


def _split_in_parts(totals, group, shares, cuts, ssum=None):
    """allocate_grouped's split, made part by part as casemix.dask does (_allocate's passes)."""
    from casemix.dask import _allocate as al

    n = shares.size
    if ssum is None:
        ssum = np.bincount(group, weights=shares, minlength=totals.size)
    key = np.arange(n, dtype=np.int64) + (7 << 32)
    parts = [al.Shares(group[a:b], shares[a:b], key[a:b]) for a, b in _cut(n, cuts)]
    first = [al.first_pass(p, totals, ssum) for p in parts]
    floors, hist = sum(f[0] for f in first), sum(f[1] for f in first)
    cut = al.thresholds(totals, floors, hist)
    found = [al.candidates(p, totals, ssum, cut) for p in parts]
    cut = al.choose(cut, totals, floors, hist, found)
    return np.concatenate([al.final_pass(p, totals, ssum, cut) for p in parts])


def _tied_shares(data, n: int, n_groups: int, values: int) -> tuple[np.ndarray, np.ndarray]:
    """n shares drawn from a few values (fractions tie: the share and row tie-breaks decide)
    and their groups."""
    pool = data.draw(st.lists(st.floats(0.01, 1e4, allow_nan=False), min_size=1, max_size=values))
    shares = np.array(data.draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)))
    return shares, np.array(data.draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n)))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n_groups=st.integers(1, 4),
    n=st.integers(1, 400),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_largest_remainder_across_partitions_equals_in_memory(data, n_groups, n, cuts):
    # every case gets the fen allocate_grouped gives it, whatever the partitions; shares drawn
    # from a few values so that fractions tie and the share and row tie-breaks decide
    from casemix._money import allocate_grouped

    shares, group = _tied_shares(data, n, n_groups, 6)
    present = np.bincount(group, minlength=n_groups) > 0
    totals = np.where(
        present, data.draw(st.lists(st.integers(0, 10**9), min_size=n_groups, max_size=n_groups)), 0
    ).astype(np.int64)
    got = _split_in_parts(totals, group, shares, cuts)
    assert got.tolist() == allocate_grouped(totals, group, shares).tolist()


@settings(max_examples=150, deadline=None)
@given(data=st.data(), shrink=st.sampled_from([1e-9, 1e-6, 1e-3]))
def test_largest_remainder_across_partitions_takes_fen_back(data, shrink):
    # Float noise can make a group's floors sum to more than its total (never seen in range):
    # the smallest fractional parts give a fen back, ties to the smaller share, then the later
    # row.  Forced here by a sum of shares S_g a little below the true one, so that every exact
    # share is a little too large; the distributed passes must take back the fen the in-memory
    # kernel takes back from the same exact shares.
    from casemix._money_kernel import spread_left

    n_groups, n = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 300))
    cuts = data.draw(st.lists(st.integers(0, n), max_size=6))
    shares, group = _tied_shares(data, n, n_groups, 4)
    count = np.bincount(group, minlength=n_groups)
    # T_g × shrink ≈ u × n_g: the exact shares add up to about T_g + u × n_g, their fractional
    # parts to about n_g / 2 (when they differ), so mostly between 0 and n_g fen to take back
    u = np.array(data.draw(st.lists(st.floats(0.55, 1.45), min_size=n_groups, max_size=n_groups)))
    totals = np.round(count * u / shrink).astype(np.int64)
    ssum = np.bincount(group, weights=shares, minlength=n_groups) * (1 - shrink)
    div = np.where(ssum > 0, ssum, 1.0)
    exact = shares / div[group] * totals[group]
    want = np.floor(exact).astype(np.int64)
    left = totals - np.bincount(group, weights=want, minlength=n_groups).astype(np.int64)
    # (equal fractions, from equal shares, can leave fen to give instead: not this test's case)
    assume((left < 0).any() and (np.abs(left) <= count).all())
    spread_left(group, shares, exact, want, left)
    assert np.bincount(group, weights=want, minlength=n_groups).astype(np.int64).tolist() == totals.tolist()
    got = _split_in_parts(totals, group, shares, cuts, ssum=ssum)
    assert got.tolist() == want.tolist()


def test_largest_remainder_takes_fen_back_example():
    # 4 equal shares of a total of 10 fen with S = 0.99 × their sum: each exact share is
    # 10 / 4 / 0.99 = 2.5252..., floors 2 × 4 = 8, so 2 fen are given; with S = 0.7 × the sum,
    # 3.5714... each: floors 12, 2 fen taken back from the smallest fractions (all equal,
    # equal shares): the two later rows
    totals, group, shares = np.array([10]), np.zeros(4, dtype=np.int64), np.full(4, 3.0)
    assert _split_in_parts(totals, group, shares, [2], ssum=np.array([12.0 * 0.99])).tolist() == [3, 3, 2, 2]
    assert _split_in_parts(totals, group, shares, [2], ssum=np.array([12.0 * 0.7])).tolist() == [3, 3, 2, 2]


def test_largest_remainder_across_partitions_large():
    # 300,000 cases of 40 hospitals in uneven parts: thousands of fen to place per hospital
    from casemix._money import allocate_grouped

    rng = np.random.default_rng(4)
    n = 300_000
    group = rng.integers(0, 40, n)
    shares = np.round(rng.gamma(2.0, 50.0, n), 1)  # rounded: many equal shares and fractions
    totals = rng.integers(10**9, 10**11, 40).astype(np.int64)
    got = _split_in_parts(totals, group, shares, [1, 130, 100_001, 100_001, 299_999])
    assert got.tolist() == allocate_grouped(totals, group, shares).tolist()


@pytest.mark.parametrize("k", [1, 3, 16])
def test_benefits_equal_in_memory(client, k):
    # caps and deductibles accumulate per person across partitions of the input
    from casemix import benefits as bf

    # with a list column, as a grouped frame has: it is not shuffled, and comes back untouched
    frame = (
        bf.synthetic_cases(3000, 700, seed=4)
        .with_columns(pl.concat_list(pl.col("patient_id").cast(pl.String)).alias("sdx"))
        .to_pandas(use_pyarrow_extension_array=True)
    )
    policy = bf.load_policy("illustrative")
    mem = bf.simulate(frame, policy)
    ddf = dd.from_map(
        _take,
        [frame] * k,
        [
            (int(a), int(b))
            for a, b in zip(
                np.linspace(0, len(frame), k + 1)[:-1], np.linspace(0, len(frame), k + 1)[1:], strict=True
            )
        ],
        meta=frame.iloc[:0],
        enforce_metadata=False,
    )
    got = cd.benefits(ddf, policy).compute()
    for c in bf.OUTPUT_COLUMNS:
        assert got[c].tolist() == mem[c].tolist(), c
    assert got["sdx"].tolist() == frame["sdx"].tolist()
    assert frame["patient_id"].nunique() < len(frame)  # persons with several cases


def test_benefits_keeps_the_partitions_of_a_parquet_projection(client, tmp_path):
    # Dask's partition tuning fuses the small files of a column projection; benefits keeps one
    # partition per file, as settle does, and its results come back to those partitions
    from casemix import benefits as bf

    frame = bf.synthetic_cases(3000, 700, seed=4)
    files = 8
    for i, part in enumerate(frame.iter_slices(-(-frame.height // files))):
        # columns benefits does not read: the projection keeps a third of them
        extra = [pl.lit(f"text {j}").alias(f"note_{j}") for j in range(2 * frame.width)]
        part.with_columns(extra).write_parquet(tmp_path / f"part-{i}.parquet")
    # the columns in another order than the files' (a projection Dask cannot fold into the read)
    narrow = dd.read_parquet(str(tmp_path), dtype_backend="pyarrow")[frame.columns[::-1]]
    assert narrow.optimize().npartitions < files  # what the tuning would do
    policy = bf.load_policy("illustrative")
    got = cd.benefits(narrow, policy)
    assert got.npartitions == files
    got = got.compute()
    mem = bf.simulate(frame.to_pandas(use_pyarrow_extension_array=True), policy)
    for c in bf.OUTPUT_COLUMNS:
        assert got[c].tolist() == mem[c].tolist(), c


def test_weights_equal_in_memory(client, grouped):
    w = cd.weights(_dask(grouped, 3))
    assert_frame_equal(pl.from_pandas(w.table), pl.from_pandas(compute_weights(grouped).table))


def test_errors_name_the_row(client, cases, grouped):
    weights = compute_weights(grouped)
    # ratio form: the at-cost cases' fund part alone exceeds a 1-yuan budget (under the actual
    # form the synthetic cases' patient shares would cover them)
    with pytest.raises(PolicyError, match="exceed the budget"):
        cd.settle(_dask(grouped, 3), _policy(cases).replace(budget=1, point_form="ratio"), weights=weights)
    with pytest.raises(InputError, match="dask.dataframe.DataFrame"):
        cd.group(cases)
    # group means of the settled year itself are a region-wide reduction this version refuses
    with pytest.raises(InputError, match="HighCost.mean"):
        cd.settle(_dask(grouped, 3), _policy(cases, high_cost=HighCost(mean="cases")), weights=weights)
    with pytest.raises(InputError, match="mean_cost"):
        cd.settle(_dask(grouped, 3), _policy(cases), weights=weights.table[["drg", "rw"]])
    with pytest.raises(InputError, match="same_hospital"):
        cd.settle(_dask(grouped, 3), _policy(cases, readmission=Readmission()), weights=weights)
    # a needed column missing altogether: the in-memory message, before any work
    with pytest.raises(InputError, match="settle needs column 'total_cost'"):
        cd.settle(_dask(grouped.drop(columns=["total_cost"]), 3), _policy(cases), weights=weights)
    # a bad value the core rejects (a new-technology cost above … not a number) names row and case id
    bad = grouped.assign(new_tech_cost=0.0)
    bad.loc[1530, "new_tech_cost"] = -5.0
    nt = NewTechConfig(enabled=True)
    with pytest.raises(InputError, match=r"new_tech_cost .* row \d+ \(case_id"):
        cd.settle(_dask(bad, 3), _policy(cases, new_tech=nt), weights=weights)


def test_workers_use_one_numba_thread_and_the_warm_cache(client, cases):
    cd.group(_dask(cases, 3), scheme=SCHEME).compute()

    def probe():
        from casemix.drg import kernel

        return (
            os.environ.get("NUMBA_NUM_THREADS"),
            sum(kernel.group_kernel.stats.cache_misses.values()),
            os.environ.get("MALLOC_TRIM_THRESHOLD_"),
        )

    assert worker_env()["NUMBA_NUM_THREADS"] == "1"
    for threads, misses, trim in client.run(probe).values():
        assert threads == "1"
        assert misses == 0  # loaded from the cache warmed before the workers started
        assert trim is None  # Dask's 65536 would switch off glibc's adaptive mmap threshold


@pytest.mark.parametrize(
    "spec, want",
    [
        ("local:3", ("local", 3)),
        ("local", ("local", 2)),
        ("tcp://10.0.0.5:8786", ("tcp", "tcp://10.0.0.5:8786")),
        ("threads:4", ("threads", 4)),
        ("threads", ("threads", None)),
    ],
)
def test_parse_spec(spec, want):
    assert cd.parse_spec(spec) == want


@pytest.mark.parametrize("spec", ["local:0", "local:x", "10.0.0.5:8786", "tcp://host", "", "threads:0"])
def test_parse_spec_rejects(spec):
    with pytest.raises(InputError, match="--dask"):
        cd.parse_spec(spec)


def test_cli_helpers_parquet_folders(client, tmp_path, cases, grouped):
    # through the tcp:// spec, on this module's cluster; Parquet folder in, folder out
    from casemix.cli.dask_opts import group_on_dask, settle_on_dask

    src = tmp_path / "cases"
    src.mkdir()
    frame = pl.from_pandas(cases)
    for i, (a, b) in enumerate(_slices(4)):
        frame.slice(a, b - a).write_parquet(src / f"part-{i}.parquet")
    spec = client.scheduler.address
    info = group_on_dask(src, tmp_path / "grouped", SCHEME, "batch", spec)
    back = pl.read_parquet(tmp_path / "grouped" / "*.parquet")
    assert info["rows"] == back.height == len(cases)
    for c in GROUP_COLS:
        assert back[c].to_list() == grouped[c].astype(str).tolist(), c
    ok = casemix.load_scheme(SCHEME).status["grouped"]
    assert info["grouped"] == int((grouped["status"] == ok).sum()) > 0
    assert info["counts"]["cases"].sum() == len(cases)

    weights = compute_weights(grouped)
    pl.from_pandas(weights.table).write_parquet(tmp_path / "weights.parquet")
    policy = _policy(cases)
    s, paths = settle_on_dask(
        tmp_path / "grouped", tmp_path / "settled", policy, spec, weights_path=tmp_path / "weights.parquet"
    )
    mem = settle(grouped, policy, weights=compute_weights(grouped))
    got = pl.read_parquet(paths["cases"] / "*.parquet")
    assert got["payment_fen"].to_list() == mem.cases["payment_fen"].tolist()
    hosp = pl.read_parquet(paths["hospitals"])
    assert hosp["payment_fen"].to_list() == mem.hospitals["payment_fen"].tolist()
    assert pl.read_parquet(paths["region"])["budget_check"][0]

    # a column projection of a Parquet folder: dask fuses its small files into fewer partitions
    cols = [
        "case_id",
        "hospital_id",
        "hospital_level",
        "drg",
        "adrg",
        "total_cost",
        "los",
        "discharge",
        "patient_id",
        "admission_date",
        "discharge_date",
    ]
    # and the money columns settlement reads (the patient share changes every fund payment)
    cols += [c for c in ("pdx", "insurance_type", "patient_share", "fund_paid") if c in grouped]
    narrow = dd.read_parquet(str(tmp_path / "grouped"), dtype_backend="pyarrow")[cols]
    files = len(list((tmp_path / "grouped").glob("*.parquet")))
    assert narrow.optimize().npartitions < files  # what Dask's partition tuning would do
    dist = cd.settle(narrow, policy, weights=weights)
    assert dist.cases.npartitions == files  # settle keeps one partition per file
    again = dist.cases.compute()
    assert again["payment_fen"].tolist() == mem.cases["payment_fen"].tolist()


def test_settle_string_view_columns(client, tmp_path, cases, grouped):
    # polars writes text as Arrow string_view (casemix group's Parquet output does); Dask cannot
    # copy a meta with such a column, so those columns come back as large_string
    import pyarrow.parquet as pq

    frame = grouped.drop(columns=["patient_id"])
    table = pl.from_pandas(frame).to_arrow()
    views = table.schema.set(table.schema.get_field_index("drg"), pa.field("drg", pa.string_view()))
    for i, (a, b) in enumerate(_slices(3)):
        pq.write_table(table.slice(a, b - a).cast(views), tmp_path / f"part-{i}.parquet")
    ddf = dd.read_parquet(str(tmp_path), dtype_backend="pyarrow")
    assert ddf._meta["drg"].dtype == pd.ArrowDtype(pa.string_view())
    weights = compute_weights(grouped)
    policy = _policy(cases)
    dist = cd.settle(ddf, policy, weights=weights)
    assert dist.cases._meta["drg"].dtype == pd.ArrowDtype(pa.large_string())
    got = dist.cases.compute()
    mem = settle(frame, policy, weights=weights)
    assert got["payment_fen"].tolist() == mem.cases["payment_fen"].tolist()
    assert got["drg"].tolist() == frame["drg"].tolist()


def test_cli_settle_dask_with_map(client, tmp_path, cases, grouped):
    # casemix settle --dask … --map FILE: your column names and bad values as in memory
    from click.testing import CliRunner

    from casemix.cli import main

    frame, _ = _messy(grouped)
    # without patient ids: the demo policy pairs readmissions across hospitals, refused on Dask
    frame = frame.rename(columns={"院区": "机构编号"}).drop(columns=["patient_id"])
    src = tmp_path / "grouped"
    src.mkdir()
    whole = pl.from_pandas(frame)
    for i, (a, b) in enumerate(_slices(4)):
        whole.slice(a, b - a).write_parquet(src / f"part-{i}.parquet")
    (tmp_path / "map.toml").write_text('[columns]\n"机构编号" = "hospital_id"\n', encoding="utf-8")
    weights = compute_weights(grouped)
    pl.from_pandas(weights.table).write_parquet(tmp_path / "weights.parquet")
    args = ["settle", str(src), "--weights", str(tmp_path / "weights.parquet"), "--policy", "demo"]
    args += ["-o", str(tmp_path / "out"), "--dask", client.scheduler.address]
    res = CliRunner().invoke(main, [*args, "--map", str(tmp_path / "map.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    mem = settle(whole, Policy.demo(), weights=weights, mapping={"机构编号": "hospital_id"})
    got = pl.read_parquet(tmp_path / "out" / "cases" / "*.parquet")
    assert got["payment_fen"].to_list() == mem.cases["payment_fen"].to_list()
    assert got["left_out"].to_list() == mem.cases["left_out"].to_list()
    # the same on Dask's threaded scheduler in this process (--dask threads:N, no cluster)
    args[-1] = "threads:2"
    res = CliRunner().invoke(main, [*args, "--map", str(tmp_path / "map.toml"), "--quiet", "--force"])
    assert res.exit_code == 0, res.output
    got = pl.read_parquet(tmp_path / "out" / "cases" / "*.parquet")
    assert got["payment_fen"].to_list() == mem.cases["payment_fen"].to_list()
    assert got["left_out"].drop_nulls().len() == 7


def test_cli_group_dask_keep(cases, tmp_path):
    # casemix group --dask … --keep: each part holds the kept input columns and the result
    # columns, as the in-process Parquet output does; a name the input lacks is an error
    from click.testing import CliRunner

    from casemix.cli import main

    src = tmp_path / "cases"
    src.mkdir()
    frame = pl.from_pandas(cases)
    for i, (a, b) in enumerate(_slices(3)):
        frame.slice(a, b - a).write_parquet(src / f"part-{i}.parquet")
    frame.write_parquet(tmp_path / "whole.parquet")
    base = ["group", "--scheme", SCHEME, "--quiet"]
    keep = ["--keep", "hospital_id,case_id"]
    res = CliRunner().invoke(
        main, [*base, str(tmp_path / "whole.parquet"), "-o", str(tmp_path / "mem.parquet"), *keep]
    )
    assert res.exit_code == 0, res.output
    mem = pl.read_parquet(tmp_path / "mem.parquet")
    assert mem.columns == ["hospital_id", "case_id", *GROUP_COLS]
    res = CliRunner().invoke(
        main, [*base, str(src), "-o", str(tmp_path / "kept"), "--dask", "threads:2", *keep]
    )
    assert res.exit_code == 0, res.output
    parts = sorted((tmp_path / "kept").glob("part.*.parquet"))
    assert len(parts) == 3
    for part in parts:
        assert pl.read_parquet(part).columns == mem.columns, part.name
    got = pl.read_parquet(parts)
    assert got.height == len(cases)
    for c in mem.columns:
        assert got[c].cast(pl.String).to_list() == mem[c].cast(pl.String).to_list(), c

    res = CliRunner().invoke(
        main, [*base, str(src), "-o", str(tmp_path / "bare"), "--dask", "threads:2", "--keep", "none"]
    )
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(tmp_path / "bare" / "part.00000.parquet").columns == GROUP_COLS

    out = tmp_path / "typo"
    res = CliRunner().invoke(
        main, [*base, str(src), "-o", str(out), "--dask", "threads:2", "--keep", "case_id,hospitl_id"]
    )
    assert res.exit_code != 0
    assert "['hospitl_id']" in res.output and "hospital_id" in res.output and "case_id" in res.output
    assert not list(out.glob("part.*.parquet"))  # refused before any work


def test_dask_option_and_bad_spec():
    import click
    from click.testing import CliRunner

    from casemix.cli.dask_opts import _connect, dask_option

    @click.command()
    @dask_option
    def cmd(dask_spec):
        click.echo(repr(dask_spec))

    assert CliRunner().invoke(cmd, ["--dask", "local:3"]).output.strip() == "'local:3'"
    assert CliRunner().invoke(cmd, []).output.strip() == "None"
    with pytest.raises(click.BadParameter, match="at least 1"), _connect("local:0"):
        pass
