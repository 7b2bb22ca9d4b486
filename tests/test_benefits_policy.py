"""Benefit policy folders: loading, dated values, validation errors naming file and key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from casemix.benefits import load_policy, policy_from_documents, shipped_policies
from casemix.benefits.policy import NO_CAP
from casemix.errors import PolicyError

D = dt.date


def test_shipped_policies_load_and_are_labelled_illustrative():
    names = shipped_policies()
    assert {"illustrative", "illustrative-whatif-poor", "illustrative-disease-list"} <= set(names)
    for name in names:
        p = load_policy(name)
        assert p.illustrative and "ILLUSTRATIVE" in p.description


def test_every_shipped_value_has_a_source():
    for name in shipped_policies():
        p = load_policy(name)
        for key, entries in p.entries.items():
            for e in entries:
                assert e.source.strip(), (name, key)


def test_shipped_values_follow_the_notes():
    base, whatif = load_policy("illustrative"), load_policy("illustrative-whatif-poor")
    day = D(2023, 6, 1)
    v, w = base.version_on(day), whatif.version_on(day)
    cat = v.bands[("catastrophic", "resident", "subsistence")]
    assert cat.deductible == 600000 and cat.rates == (6000, 7000, 7500)
    cat = w.bands[("catastrophic", "resident", "subsistence")]
    assert cat.deductible == 500000 and cat.rates == (7000, 8000, 8500) and cat.cap == NO_CAP
    # ordinary people are untouched by the what-if
    assert (
        v.bands[("catastrophic", "employee", "ordinary")] == w.bands[("catastrophic", "employee", "ordinary")]
    )
    rates = {
        s: v.bands[("assistance", "resident", s)]
        for s in ("extreme_poor", "subsistence", "marginal", "ordinary")
    }
    assert [rates[s].rates for s in ("extreme_poor", "subsistence", "marginal")] == [
        (10000,),
        (8000,),
        (7000,),
    ]
    assert not rates["ordinary"].eligible
    # 舟惠保: 1.5 M before 2022, 1.8 M from 2022
    assert base.version_on(D(2021, 12, 31)).bands[("supplement", "resident", "ordinary")].cap == 150_000_000
    assert base.version_on(D(2022, 1, 1)).bands[("supplement", "resident", "ordinary")].cap == 180_000_000
    assert "Zhoushan" in base.source("supplement.default.cap", D(2022, 5, 1))


def _doc(effective="2023-01-01", **sections):
    return {"document": {"effective": effective, "source": "test"}, **sections}


BASIC = {
    "deductible": {i: {"1": 100, "2": 200, "3": 300} for i in ("employee", "resident")},
    "rate": {i: {"1": 0.9, "2": 0.8, "3": 0.7} for i in ("employee", "resident")},
    "cap": {"employee": 100000, "resident": "none"},
}


def test_later_document_changes_only_what_it_names_from_its_date():
    p = policy_from_documents(
        [
            _doc(basic=BASIC),
            _doc("2024-07-01", basic={"rate": {"resident": {"3": 0.75}}}),
        ]
    )
    assert [v.start for v in p.versions] == [D(2023, 1, 1), D(2024, 7, 1)]
    assert p.version_on(D(2024, 6, 30)).basic_rate[("resident", "3")] == 7000
    assert p.version_on(D(2024, 7, 1)).basic_rate[("resident", "3")] == 7500
    assert p.version_on(D(2024, 7, 1)).basic_rate[("employee", "3")] == 7000
    assert p.value("basic.rate.resident.3", D(2030, 1, 1)) == 0.75
    with pytest.raises(PolicyError, match="no values in force on 2022-12-31"):
        p.version_on(D(2022, 12, 31))


def test_dated_history_inside_one_file():
    p = policy_from_documents(
        [
            _doc(
                basic={
                    **BASIC,
                    "cap": {
                        "employee": [
                            {"value": 1000, "from": "2023-01-01"},
                            {"value": 2000, "from": "2023-03-01", "source": "notice 2"},
                        ],
                        "resident": "none",
                    },
                }
            )
        ]
    )
    assert p.version_on(D(2023, 2, 28)).basic_cap["employee"] == 100000
    assert p.version_on(D(2023, 3, 1)).basic_cap["employee"] == 200000
    assert p.source("basic.cap.employee", D(2023, 3, 1)).startswith("notice 2")


def test_lookup_order_status_poor_insured_default():
    cat = {
        "default": {"deductible": 1, "rates": [0.5], "cap": "none"},
        "resident": {"deductible": 2},
        "poor": {"deductible": 3},
        "marginal": {"deductible": 4},
    }
    v = policy_from_documents([_doc(basic=BASIC, catastrophic=cat)]).versions[0]
    ded = {
        (i, s): v.bands[("catastrophic", i, s)].deductible
        for i in ("employee", "resident")
        for s in ("ordinary", "subsistence", "marginal")
    }
    assert ded == {
        ("employee", "ordinary"): 100,
        ("resident", "ordinary"): 200,
        ("employee", "subsistence"): 300,
        ("resident", "subsistence"): 300,
        ("employee", "marginal"): 400,
        ("resident", "marginal"): 400,
    }


@pytest.mark.parametrize(
    "sections, message",
    [
        (
            {
                "basic": {
                    **BASIC,
                    "rate": {
                        "employee": {"1": 1.2, "2": 0.8, "3": 0.7},
                        "resident": {"1": 0.9, "2": 0.8, "3": 0.7},
                    },
                }
            },
            r"key basic\.rate\.employee\.1: rate 1\.2 must be between 0 and 1",
        ),
        ({"basic": {**BASIC, "deductible_typo": 1}}, r"unknown key 'basic\.deductible_typo'"),
        (
            {"basic": {**BASIC, "cap": {"employee": 10.001, "resident": "none"}}},
            r"basic\.cap\.employee: amount 10\.001 has more than 2 decimals",
        ),
        (
            {
                "basic": {
                    **BASIC,
                    "rate": {
                        "employee": {"1": 0.12345, "2": 0.8, "3": 0.7},
                        "resident": {"1": 0.9, "2": 0.8, "3": 0.7},
                    },
                }
            },
            r"finer than 0\.0001",
        ),
        (
            {"basic": {k: v for k, v in BASIC.items() if k != "cap"}},
            r"key basic\.cap\.employee has no value in force on 2023-01-01",
        ),
        (
            {
                "basic": BASIC,
                "catastrophic": {"default": {"deductible": 1, "rates": [0.5, 0.6], "cap": "none"}},
            },
            r"2 rates need 1 band_upper limits, found 0",
        ),
        (
            {
                "basic": BASIC,
                "catastrophic": {
                    "default": {"deductible": 1, "rates": [0.5, 0.6], "band_upper": [5, 5], "cap": "none"}
                },
            },
            r"band limits must be positive and strictly increasing",
        ),
        (
            {"basic": BASIC, "catastrophic": {"default": {"rates": [0.5], "cap": "none"}}},
            r"layer catastrophic has no deductible for employee/extreme_poor",
        ),
        (
            {
                "basic": BASIC,
                "assistance": {
                    "default": {"eligible": False},
                    "subsistence": {"deductible": 0, "rates": [0.8], "cap": 1},
                },
            },
            r"assistance\.subsistence\.deductible is set but .* add assistance\.subsistence\.eligible = true",
        ),
        (
            {"basic": BASIC, "supplement": {"covers": ["policy", "drugs"]}},
            r"unknown cost part\(s\) \['drugs'\]",
        ),
    ],
)
def test_bad_values_raise_policy_error_naming_the_key(sections, message):
    with pytest.raises(PolicyError, match=message):
        policy_from_documents([_doc(**sections)])


def test_document_table_required():
    with pytest.raises(PolicyError, match=r"<document 0>: a \[document\] table"):
        policy_from_documents([{"basic": BASIC}])
    with pytest.raises(PolicyError, match=r"document\.source is missing"):
        policy_from_documents([{"document": {"effective": "2023-01-01"}, "basic": BASIC}])


def test_two_values_on_one_date_conflict():
    with pytest.raises(PolicyError, match=r"key basic\.cap\.resident has two values dated 2023-01-01"):
        policy_from_documents([_doc(basic=BASIC), _doc(basic={"cap": {"resident": 5}})])


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


BASE_TOML = """
[document]
effective = 2023-01-01
source = "test base"
[basic.deductible.employee]
1 = 100
2 = 200
3 = 300
[basic.deductible.resident]
1 = 100
2 = 200
3 = 300
[basic.rate.employee]
1 = 0.9
2 = 0.8
3 = 0.7
[basic.rate.resident]
1 = 0.9
2 = 0.8
3 = 0.7
[basic.cap]
employee = 1000
resident = "none"
"""


def test_folder_errors_name_the_file(tmp_path):
    _write(tmp_path / "a", "base.toml", BASE_TOML.replace("3 = 0.7\n[basic.cap]", "3 = 7\n[basic.cap]"))
    with pytest.raises(PolicyError, match=r"a[/\\]base\.toml, line 20: key basic\.rate\.resident\.3: rate 7"):
        load_policy(tmp_path / "a")
    _write(tmp_path / "b", "base.toml", "[document\n")
    with pytest.raises(PolicyError, match=r"b[/\\]base\.toml, line 1: TOML syntax error"):
        load_policy(tmp_path / "b")
    with pytest.raises(PolicyError, match="benefit policy folder not found"):
        load_policy(tmp_path / "nowhere")


def test_whatif_folder_extends_and_overrides(tmp_path):
    _write(tmp_path / "base", "base.toml", BASE_TOML)
    _write(tmp_path / "whatif", "policy.toml", '[policy]\nname = "w"\nextends = "../base"\n')
    _write(
        tmp_path / "whatif",
        "change.toml",
        '[document]\neffective = 2023-01-01\nsource = "what-if"\n[basic.cap]\nemployee = 2000\n',
    )
    w = load_policy(tmp_path / "whatif")
    assert w.name == "w" and w.versions[0].basic_cap["employee"] == 200000
    assert load_policy(tmp_path / "base").versions[0].basic_cap["employee"] == 100000
    _write(tmp_path / "loop", "policy.toml", '[policy]\nextends = "../loop"\n')
    with pytest.raises(PolicyError, match="makes a cycle"):
        load_policy(tmp_path / "loop")


def test_typos_in_policy_files_name_line_and_nearest_key(tmp_path):
    _write(tmp_path / "a", "base.toml", BASE_TOML.replace("[basic.cap]", "[basic.caps]"))
    with pytest.raises(
        PolicyError,
        match=r"base\.toml, line 21, key basic\.caps: unknown key "
        r"'basic\.caps'; did you mean 'cap'\?",
    ):
        load_policy(tmp_path / "a")
    _write(tmp_path / "b", "base.toml", BASE_TOML)
    _write(tmp_path / "b", "policy.toml", '[policy]\nname = "b"\nilustrative = true\n')
    with pytest.raises(
        PolicyError,
        match=r"policy\.toml, line 3, key policy\.ilustrative: .*"
        r"did you mean 'illustrative'\?",
    ):
        load_policy(tmp_path / "b")
    _write(tmp_path / "c", "base.toml", BASE_TOML)
    _write(tmp_path / "c", "policy.toml", '[policy]\nillustrative = "yes"\n')
    with pytest.raises(PolicyError, match=r"'policy\.illustrative' must be true or false, got 'yes'"):
        load_policy(tmp_path / "c")
