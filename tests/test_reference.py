"""The reference grouper, step by step, on the tiny scheme (expected answers worked by hand)."""

import pytest
from tests.tiny_scheme import write

from casemix.drg.reference import Case, _Context, group_case, holds, severity_levels, validity_failure
from casemix.scheme import load_scheme
from casemix.scheme.rules import parse_rule


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_scheme(write(tmp_path_factory.mktemp("tiny")))


def adult(**kw):
    base = dict(pdx="I99.x00", sex=1.0, age=50.0, los=5.0, discharge=1.0)
    base.update(kw)
    return Case(**base)


def ev(tiny, rule, case, levels=()):
    return holds(parse_rule(rule, allow_severity=True), _Context(case, tiny, set(levels)))


# -- predicates -----------------------------------------------------------------


def test_pdx_sdx_dx_in(tiny):
    c = adult(pdx="I50.000", sdx=("I21.000",))
    assert ev(tiny, "pdx in FR1.pdx", c) and not ev(tiny, "pdx in FA1.pdx", c)
    assert ev(tiny, "sdx in FA1.pdx", c) and not ev(tiny, "sdx in FR1.pdx", c)
    assert ev(tiny, "dx in FA1.pdx", c) and ev(tiny, "dx in FR1.pdx", c)
    assert not ev(tiny, "pdx in FR1.pdx", adult(pdx=None, sdx=("I50.000",)))


def test_pproc_proc_in_and_or_procedures(tiny):
    c = adult(pproc="89.4500", oproc=("36.1000",))
    assert ev(tiny, "pproc in FK1.a", c) and not ev(tiny, "pproc in FA1.pproc", c)
    assert ev(tiny, "proc in FA1.pproc", c) and ev(
        tiny, "proc in FK1.a & proc in FK1.b", adult(pproc="89.4600", oproc=("89.4500",))
    )
    assert not ev(tiny, "pproc_or", c) and ev(tiny, "proc_or", c)
    assert ev(tiny, "!proc_or", adult()) and not ev(tiny, "pproc_or", adult())


def test_sites_counts_distinct_attrs_among_all_diagnoses(tiny):
    two_chest = adult(pdx="S27.000", sdx=("S27.100",))
    assert ev(tiny, "sites(MDCZ.pdx) == 1", two_chest)
    head_chest = adult(pdx="S27.000", sdx=("S06.000", "S27.100"))
    assert ev(tiny, "sites(MDCZ.pdx) >= 2", head_chest) and not ev(tiny, "sites(MDCZ.pdx) > 2", head_chest)


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("age >= 50", True),
        ("age > 50", False),
        ("sex == 1", True),
        ("sex != 1", False),
        ("los < 6", True),
        ("los <= 4", False),
        ("discharge == 1", True),
        ("age_days <= 28", False),
        ("!(age_days <= 28)", True),
        ("birth_weight != 0", False),
    ],
)
def test_field_comparisons_missing_is_false(tiny, rule, expected):
    assert ev(tiny, rule, adult()) is expected


def test_severity_with_exclusions(tiny):
    # I50.000 (table 7) as secondary is a CC, excluded when the principal has table 7
    assert severity_levels(adult(pdx="I21.000", sdx=("I50.000",)), tiny) == {"CC"}
    assert severity_levels(adult(pdx="I50.000", sdx=("I50.000",)), tiny) == set()
    # J96.000 MCC table 5 excluded for I21.000 (table 5); N17.900 table 99 never excluded
    assert severity_levels(adult(pdx="I21.000", sdx=("J96.000",)), tiny) == set()
    assert severity_levels(adult(pdx="I21.000", sdx=("N17.900",)), tiny) == {"MCC"}
    # a principal without a table excludes nothing; principal itself never counts
    assert severity_levels(adult(pdx="I99.x00", sdx=("J96.000", "E87.100")), tiny) == {"MCC", "CC"}
    assert severity_levels(adult(pdx="J96.000"), tiny) == set()
    c = adult(pdx="I50.000", sdx=("E87.100",))
    assert ev(tiny, "cc", c, {"CC"}) and not ev(tiny, "mcc", c, {"CC"})


# -- validity ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, reason",
    [
        (Case(pdx="I50.000", age=50.0), "sex missing"),
        (Case(pdx="I50.000", sex=3.0, age=50.0), "sex 1 or 2"),
        (Case(pdx="I50.000", sex=1.0), "age missing"),
        (Case(pdx="P07.100", sex=1.0, age=0.0, age_days=3.0), "weight missing"),
        (Case(pdx=None, sex=1.0, age=50.0), "no diagnosis"),
        (Case(pdx="I50.000", sex=1.0, malformed=("age",)), "malformed"),
    ],
)
def test_validity_checks_in_order(tiny, case, reason):
    assert validity_failure(case, tiny) == reason
    r = group_case(case, tiny)
    assert (r.drg, r.status, r.reason, r.mdc, r.adrg, r.severity) == ("0000", "bad", reason, "", "", "")


def test_when_clause_skips_check(tiny):
    # weight is required only for newborns (age 0 and age_days <= 28)
    assert validity_failure(Case(pdx="P07.100", sex=1.0, age=0.0, age_days=40.0), tiny) is None
    assert (
        validity_failure(Case(pdx="P07.100", sex=2.0, age=0.0, age_days=3.0, birth_weight=0.0), tiny) is None
    )
    # secondary diagnoses alone satisfy "diagnoses present"
    assert validity_failure(Case(pdx=None, sdx=("I50.000",), sex=1.0, age=3.0), tiny) is None


# -- grouping steps -----------------------------------------------------------------


def g(tiny, **kw):
    r = group_case(adult(**kw), tiny)
    return r.mdc, r.adrg, r.drg, r.severity, r.status, r.reason


def test_pre_mdc_entered_by_or_procedure_then_first_adrg(tiny):
    assert g(tiny, pproc="33.5000")[:3] == ("MDCA", "AA1", "AA19")


def test_fall_through_from_pre_mdc(tiny):
    # OR principal procedure enters MDCA; no MDCA ADRG takes it; MDCF's FA1 does
    assert g(tiny, pdx="I21.000", pproc="36.1000")[:3] == ("MDCF", "FA1", "FA15")


def test_ambiguous_group_for_or_procedure_in_medical_adrg(tiny):
    # appendectomy with heart failure: MDCA falls through, MDCF medical FR1 -> FQY
    assert g(tiny, pdx="I50.000", pproc="47.0100")[:3] == ("MDCF", "FQY", "FQY9")
    # a non-OR principal procedure stays medical
    assert g(tiny, pdx="I50.000", pproc="89.4500", age=85.0)[:3] == ("MDCF", "FR1", "FR15")


def test_newborn_weight_band_and_catch_all(tiny):
    r = group_case(Case(pdx="P07.100", sex=1.0, age=0.0, age_days=5.0, birth_weight=1200.0), tiny)
    assert (r.mdc, r.adrg, r.drg) == ("MDCP", "PS1", "PS19")
    r = group_case(Case(pdx="P07.100", sex=1.0, age=0.0, age_days=5.0, birth_weight=0.0), tiny)
    assert r.adrg == "PV1"
    r = group_case(Case(pdx="P07.100", sex=1.0, age=0.0, age_days=40.0), tiny)
    assert r.adrg == "PV1"


def test_multiple_trauma_needs_two_sites(tiny):
    assert g(tiny, pdx="S27.000", sdx=("S06.000",))[:3] == ("MDCZ", "ZZ1", "ZZ19")
    assert g(tiny, pdx="S27.000", sdx=("S27.100",))[4:] == ("none", "no mdc")


def test_sex_specific_mdc(tiny):
    assert g(tiny, pdx="N40.x00", pproc="60.2900")[:3] == ("MDCM", "MA1", "MA15")
    # female: MDCM not entered; the OR procedure enters MDCA, which falls through; nothing else
    r = g(tiny, pdx="N40.x00", pproc="60.2900", sex=2.0)
    assert r[:3] == ("", "", "0000") and r[4:] == ("none", "no adrg")


def test_drg_split_first_match(tiny):
    assert g(tiny, pdx="I50.000", sdx=("J96.000",))[2:4] == ("FR11", "MCC")
    assert g(tiny, pdx="I50.000", sdx=("E87.100",))[2:4] == ("FR13", "CC")
    assert g(tiny, pdx="I50.000", age=85.0)[2:4] == ("FR15", "none")
    # FR1 has no unconditional row: young without CC, or old who died, finds no DRG
    assert g(tiny, pdx="I50.000")[2:] == ("0000", "none", "none", "no drg")
    assert g(tiny, pdx="I50.000", age=85.0, discharge=5.0)[2] == "0000"


def test_two_procedure_adrg_and_negated_rule(tiny):
    assert g(tiny, pdx="I99.x00", pproc="89.4600", oproc=("89.4500",))[1] == "FK1"
    assert g(tiny, pdx="I99.x00")[1:3] == ("FT1", "FT19")
    assert g(tiny, pdx="I99.x00", los=0.0)[2:] == ("0000", "none", "none", "no drg")


def test_unknown_principal_is_ungroupable_with_reason(tiny):
    assert g(tiny, pdx="ZZZ.999") == ("", "", "0000", "none", "none", "no mdc")
