"""Properties of the benefit cascade on generated policies and cases (hypothesis)."""

from __future__ import annotations

import copy
import datetime as dt
import os

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemix.benefits import OUTPUT_COLUMNS, PAY_COLUMNS, policy_from_documents, simulate
from casemix.benefits import reference as ref
from casemix.benefits.policy import INSURED, LAYERS, LEVELS, PART_BIT, PARTS, STATUSES

# CASEMIX_HYPOTHESIS_EXAMPLES=2000 for a longer hunt than CI's
SETTINGS = settings(
    max_examples=int(os.environ.get("CASEMIX_HYPOTHESIS_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

START = dt.date(2022, 1, 1)
CHANGE = dt.date(2023, 7, 1)

rates = st.integers(0, 20).map(lambda k: round(k * 0.05, 2))
amounts = st.integers(0, 60).map(lambda k: k * 250)
caps = st.one_of(st.just("none"), st.integers(1, 80).map(lambda k: k * 500))


@st.composite
def band_sets(draw, full=True):
    n = draw(st.integers(1, 3))
    uppers = sorted(draw(st.sets(st.integers(1, 120).map(lambda k: k * 500), min_size=n - 1, max_size=n - 1)))
    s = {"rates": [draw(rates) for _ in range(n)], "band_upper": uppers}
    if full or draw(st.booleans()):
        s["deductible"] = draw(amounts)
        s["cap"] = draw(caps)
    return s


@st.composite
def policy_docs(draw, nested=False):
    """Valid policies.  ``nested``: the class on which raising a rate provably never
    raises a person's annual out-of-pocket (see docs/benefits.md): each layer
    covers all or none of the parts an earlier layer covers — every annual
    layer covers the policy range plus a growing set of parts, the
    special-drug line only special drugs — and no disease-list layers."""
    basic = {
        "deductible": {i: {lv: draw(amounts) for lv in LEVELS} for i in INSURED},
        "rate": {i: {lv: draw(rates) for lv in LEVELS} for i in INSURED},
        "cap": {i: draw(caps) for i in INSURED},
        "referral_continuous": draw(st.booleans()),
    }
    doc = {"document": {"effective": START.isoformat(), "source": "generated"}, "basic": basic}
    covered = ["policy"]
    for layer in LAYERS:
        if not draw(st.booleans()):
            continue
        if not nested:
            covers = draw(st.lists(st.sampled_from(PARTS), min_size=1, max_size=4, unique=True))
        elif layer == "catastrophic_drug":
            covers = ["special_drug"]
        else:
            # special drugs join only after the special-drug line, which covers nothing else
            allowed = PARTS[1:] if layer != "catastrophic" else ("preselfpay", "selfpay")
            covered += [p for p in allowed if p not in covered and draw(st.booleans())]
            covers = list(covered)
        sec = {
            "covers": covers,
            "major_disease_only": not nested and draw(st.booleans()),
            "default": draw(band_sets()),
        }
        if draw(st.booleans()):
            sec["poor"] = draw(band_sets(full=False))
        if draw(st.booleans()):
            sec["ordinary"] = {"eligible": False}
        doc[layer] = sec
    return [doc]


@st.composite
def case_lists(draw, fixed_person=False):
    """Cases of three persons; ``fixed_person``: a person keeps one status and insured type."""
    n = draw(st.integers(1, 10))
    out = []
    person = {
        p: (draw(st.sampled_from(["职工", "居民"])), draw(st.sampled_from(["特困", "低保", "低边", "普通"])))
        for p in "abc"
    }
    for _ in range(n):
        parts = [draw(st.one_of(st.integers(0, 3_000_000), st.integers(0, 300))) for _ in range(4)]
        extra = draw(st.one_of(st.just(0), st.integers(0, 100_000)))
        out.append(
            {
                "patient_id": (pid := draw(st.sampled_from(["a", "b", "c"]))),
                # often on shared days: same-day cases, the year end and the change date
                "discharge_date": START
                + dt.timedelta(
                    days=draw(st.one_of(st.integers(0, 729), st.sampled_from([0, 180, 364, 365, 545, 546])))
                ),
                "insurance_type": person[pid][0] if fixed_person else draw(st.sampled_from(["职工", "居民"])),
                "assist_status": (
                    person[pid][1]
                    if fixed_person
                    else draw(st.sampled_from(["特困", "低保", "低边", "普通"]))
                ),
                "hosp_level": draw(st.integers(1, 3)),
                "inscp_scp_amt": parts[0] / 100,
                "preselfpay_amt": parts[1] / 100,
                "special_drug_amt": parts[2] / 100,
                "fulamt_ownpay_amt": parts[3] / 100,
                "total_cost": (sum(parts) + extra) / 100,
                "referral": draw(st.booleans()),
                "major_disease": draw(st.booleans()),
            }
        )
    return out


def _frame(cases):
    return pl.DataFrame(cases, schema_overrides={"hosp_level": pl.Int8})


def _fen(x: float) -> int:
    return int(round(x * 100))


@SETTINGS
@given(policy_docs(), case_lists())
def test_batch_equals_reference(docs, cases):
    policy = policy_from_documents(docs)
    a = simulate(_frame(cases), policy, engine="batch").select(OUTPUT_COLUMNS)
    b = simulate(_frame(cases), policy, engine="reference").select(OUTPUT_COLUMNS)
    assert a.equals(b)


@SETTINGS
@given(policy_docs(), case_lists())
def test_payments_plus_patient_share_is_total_cost(docs, cases):
    out = simulate(_frame(cases), policy_from_documents(docs))
    pays = out.select(PAY_COLUMNS).to_numpy()
    total = np.array([_fen(c["total_cost"]) for c in cases])
    own = np.array(
        [
            _fen(c["total_cost"])
            - _fen(c["inscp_scp_amt"])
            - _fen(c["preselfpay_amt"])
            - _fen(c["special_drug_amt"])
            - _fen(c["fulamt_ownpay_amt"])
            for c in cases
        ]
    )
    assert (pays >= 0).all()
    assert (pays.sum(axis=1) + out["psn_part_amt"].to_numpy() == total).all()
    # nothing covers the part outside the four cost parts (e.g. 超限价自费)
    assert (out["psn_part_amt"].to_numpy() >= own).all()


def _cases_for_reference(cases):
    from casemix.benefits import _INSURED_VALUES, _STATUS_VALUES

    return [
        ref.Case(
            row=i,
            person=c["patient_id"],
            day=c["discharge_date"],
            insured=INSURED[_INSURED_VALUES[c["insurance_type"]]],
            status=STATUSES[_STATUS_VALUES[c["assist_status"]]],
            level=str(c["hosp_level"]),
            referral=c["referral"],
            major_disease=c["major_disease"],
            policy_amt=_fen(c["inscp_scp_amt"]),
            preselfpay=_fen(c["preselfpay_amt"]),
            special_drug=_fen(c["special_drug_amt"]),
            selfpay=_fen(c["fulamt_ownpay_amt"]),
            total=_fen(c["total_cost"]),
        )
        for i, c in enumerate(cases)
    ]


@SETTINGS
@given(policy_docs(), case_lists())
def test_no_layer_pays_more_than_reaches_it(docs, cases):
    policy = policy_from_documents(docs)
    rcases = sorted(_cases_for_reference(cases), key=lambda c: (c.person, c.day, c.row))
    years: dict = {}
    for c in rcases:
        year = years.setdefault((c.person, c.day.year), ref.PersonYear())
        v = policy.version_on(c.day)
        remaining = {
            "policy": c.policy_amt,
            "preselfpay": c.preselfpay,
            "special_drug": c.special_drug,
            "selfpay": c.selfpay,
        }
        pay = ref.basic_insurance(c, v, year.basic)
        assert 0 <= pay <= c.policy_amt
        ref.take_off(remaining, PART_BIT["policy"], pay)
        for layer in LAYERS:
            reaching = sum(remaining[p] for p in PARTS if v.covers[layer] & PART_BIT[p])
            pay = ref.annual_layer(c, v, layer, year.annual[layer], remaining)
            assert 0 <= pay <= reaching, layer
            assert min(remaining.values()) >= 0


def _person_year_oop(cases, out):
    totals: dict = {}
    for c, oop in zip(cases, out["psn_part_amt"].to_list(), strict=True):
        key = (c["patient_id"], c["discharge_date"].year)
        totals[key] = totals.get(key, 0) + oop
    return totals


@st.composite
def rate_raises(draw, docs):
    """A copy of ``docs`` with one rate raised, and a description of which."""
    raised = copy.deepcopy(docs)
    doc = raised[0]
    layers = [layer for layer in LAYERS if layer in doc]
    where = draw(st.sampled_from(["basic", *layers]))
    if where == "basic":
        i, lv = draw(st.sampled_from(INSURED)), draw(st.sampled_from(LEVELS))
        doc["basic"]["rate"][i][lv] = round(min(1.0, doc["basic"]["rate"][i][lv] + draw(rates)), 2)
    else:
        sets = [s for s in doc[where] if isinstance(doc[where][s], dict) and "rates" in doc[where][s]]
        s = draw(st.sampled_from(sets))
        k = draw(st.integers(0, len(doc[where][s]["rates"]) - 1))
        doc[where][s]["rates"][k] = round(min(1.0, doc[where][s]["rates"][k] + draw(rates)), 2)
    return raised, where


@SETTINGS
@given(st.data())
def test_raising_a_rate_never_raises_the_patients_share(data):
    docs = data.draw(policy_docs(nested=True))
    cases = data.draw(case_lists(fixed_person=True))
    raised, where = data.draw(rate_raises(docs))
    before = _person_year_oop(cases, simulate(_frame(cases), policy_from_documents(docs)))
    after = _person_year_oop(cases, simulate(_frame(cases), policy_from_documents(raised)))
    for key in before:
        assert after[key] <= before[key], (where, key)


@SETTINGS
@given(st.data())
def test_later_dated_value_used_only_from_its_date(data):
    docs = data.draw(policy_docs())
    cases = data.draw(case_lists())
    later = {
        "document": {"effective": CHANGE.isoformat(), "source": "generated change"},
        "basic": {
            "rate": {i: {lv: data.draw(rates) for lv in LEVELS} for i in INSURED},
            "deductible": {"resident": {"3": data.draw(amounts)}},
        },
    }
    for layer in LAYERS:
        if layer in docs[0]:
            later[layer] = {"default": data.draw(band_sets())}
    a = simulate(_frame(cases), policy_from_documents(docs))
    b = simulate(_frame(cases), policy_from_documents([*docs, later]))
    early = np.array([c["discharge_date"] < CHANGE for c in cases])
    a_rows = a.select(OUTPUT_COLUMNS).to_numpy()[early]
    b_rows = b.select(OUTPUT_COLUMNS).to_numpy()[early]
    assert (a_rows == b_rows).all()


def test_raising_a_rate_can_raise_the_share_when_covers_are_not_nested():
    """The documented limit of the monotonicity property, by hand.

    大病 covers policy range and 乙类 and is capped at 1,000; 惠民保 covers 乙类
    only.  At 50 % 大病 pays 500 of case 1's 乙类 (惠民保 the other 500) and
    500 of case 2's policy range; at 100 % it pays all 1,000 of case 1's 乙类
    and reaches its cap, so 惠民保 pays nothing and case 2 gets nothing.
    """

    def docs(rate):
        return [
            {
                "document": {"effective": "2022-01-01", "source": "hand-made"},
                "basic": {
                    "deductible": {i: dict.fromkeys(LEVELS, 0) for i in INSURED},
                    "rate": {i: dict.fromkeys(LEVELS, 0) for i in INSURED},
                    "cap": dict.fromkeys(INSURED, "none"),
                },
                "catastrophic": {
                    "covers": ["policy", "preselfpay"],
                    "default": {"deductible": 0, "rates": [rate], "cap": 1000},
                },
                "supplement": {
                    "covers": ["preselfpay"],
                    "default": {"deductible": 0, "rates": [1.0], "cap": "none"},
                },
            }
        ]

    base = {
        "patient_id": "a",
        "insurance_type": "居民",
        "assist_status": "普通",
        "hosp_level": 3,
        "special_drug_amt": 0.0,
        "fulamt_ownpay_amt": 0.0,
    }
    cases = [
        {
            **base,
            "discharge_date": dt.date(2023, 1, 1),
            "inscp_scp_amt": 0.0,
            "preselfpay_amt": 1000.0,
            "total_cost": 1000.0,
        },
        {
            **base,
            "discharge_date": dt.date(2023, 2, 1),
            "inscp_scp_amt": 10000.0,
            "preselfpay_amt": 0.0,
            "total_cost": 10000.0,
        },
    ]
    for engine in ("reference", "batch"):
        low = simulate(_frame(cases), policy_from_documents(docs(0.5)), engine=engine)
        high = simulate(_frame(cases), policy_from_documents(docs(1.0)), engine=engine)
        assert low["psn_part_amt"].sum() == 950000 and high["psn_part_amt"].sum() == 1000000
