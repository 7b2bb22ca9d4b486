"""casemix.encode: codes → ids, CSR lists, numeric fields."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests import strategies_drg as S
from tests.tiny_scheme import write

from casemix.encode import (
    ABSENT,
    CHECK_FIELDS,
    UNKNOWN,
    code_index,
    encode_cases,
    encode_codes,
    encode_codes_polars,
    encode_list,
    encode_principal,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from casemix.scheme import load_scheme

    return load_scheme(write(tmp_path_factory.mktemp("tiny-encode")))


def test_universe_is_every_code_of_the_scheme(tiny):
    index = code_index(tiny)
    codes = set(index.codes.to_list())
    expected = set(tiny.diagnoses) | set(tiny.procedures) | set(tiny.cc) | set(tiny.exclusions)
    expected |= set(tiny.or_procedures) | set().union(*tiny.lists.values())
    assert codes == expected
    assert index.codes.to_list() == sorted(codes)
    assert code_index(tiny) is index  # cached per scheme
    assert index.is_diagnosis[index.id_of("I50.000")] and not index.is_procedure[index.id_of("I50.000")]
    assert index.is_procedure[index.id_of("36.1000")]
    assert index.id_of("nope") == UNKNOWN


def test_encode_codes_known_unknown_null(tiny):
    index = code_index(tiny)
    ids = encode_codes(pl.Series(["I50.000", "nope", None, "", "36.1000"]), index)
    assert ids.dtype == np.int32
    assert ids.tolist() == [index.id_of("I50.000"), -1, -1, -1, index.id_of("36.1000")]


def test_principal_absent_is_distinct_from_unknown(tiny):
    index = code_index(tiny)
    ids = encode_principal(pl.Series(["I50.000", "nope", None, ""], dtype=pl.String), index)
    assert ids.tolist() == [index.id_of("I50.000"), UNKNOWN, ABSENT, ABSENT]


def test_encode_list_csr_keeps_null_elements_and_empty_rows(tiny):
    index = code_index(tiny)
    s = pl.Series([["I50.000", "x"], [], None, ["J96.000", None]], dtype=pl.List(pl.String))
    off, val = encode_list(s, index)
    assert off.tolist() == [0, 2, 2, 2, 4]
    assert val.tolist() == [index.id_of("I50.000"), -1, index.id_of("J96.000"), -1]
    # a slice (non-zero start offset inside Arrow) encodes the same rows
    off2, val2 = encode_list(s.slice(2, 2), index)
    assert off2.tolist() == [0, 0, 2] and val2.tolist() == val[2:].tolist()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_encode_cases_roundtrip(tiny, data):
    """Decoding the ids gives back every known code; unknown ones are -1, in place."""
    pools = S.pools(tiny)
    rows = data.draw(st.lists(S.drg_case(pools), max_size=15))
    canonical = S.frame(rows)
    enc = encode_cases(canonical, tiny)
    index = code_index(tiny)
    universe = index.codes.to_list()
    known = set(universe)

    def expect(code):
        return universe.index(code) if code in known else UNKNOWN

    assert enc.n == len(rows)
    for i, r in enumerate(rows):
        assert enc.pdx[i] == (ABSENT if not r["pdx"] else expect(r["pdx"]))
        assert enc.pproc[i] == (ABSENT if not r["pproc"] else expect(r["pproc"]))
        assert enc.sdx_val[enc.sdx_off[i] : enc.sdx_off[i + 1]].tolist() == [expect(c) for c in r["sdx"]]
        assert enc.oproc_val[enc.oproc_off[i] : enc.oproc_off[i + 1]].tolist() == [
            expect(c) for c in r["oproc"]
        ]
        for k, f in enumerate(S.FIELDS):
            v = r[f]
            assert bool(enc.present[k, i]) == (v is not None)
            if v is not None:
                assert enc.fields[k, i] == v or (math.isnan(v) and math.isnan(enc.fields[k, i]))
        bits = {CHECK_FIELDS[b] for b in range(len(CHECK_FIELDS)) if enc.malformed[i] >> b & 1}
        assert bits == set(r["malformed"])


def test_encoded_arrays_are_read_only(tiny):
    enc = encode_cases(
        S.frame([{**dict.fromkeys(S.CANONICAL_TYPES), "sdx": [], "oproc": [], "malformed": []}]), tiny
    )
    for arr in (enc.pdx, enc.sdx_off, enc.sdx_val, enc.fields, enc.present, enc.malformed):
        assert not arr.flags.writeable


@settings(max_examples=40, deadline=None)
@given(
    extra=st.lists(
        st.one_of(
            st.none(),
            st.text(max_size=20),
            st.sampled_from(
                ["ABCDEFGHIJKLMNOP", "I50.000", "I50.0000", "I50.00", "诊断编码很长很长", "A17.000+G01*"]
            ),
        ),
        max_size=30,
    )
)
def test_hash_lookup_equals_polars_enum(tiny, extra):
    """The numba view lookup and the polars Enum cast give the same ids (short, long, odd codes)."""
    index = code_index(tiny)
    codes = pl.Series(index.codes.to_list() + extra, dtype=pl.String)
    assert encode_codes(codes, index).tolist() == encode_codes_polars(codes, index).tolist()
    assert encode_codes(codes.slice(3), index).tolist() == encode_codes_polars(codes.slice(3), index).tolist()


def test_long_codes_of_a_scheme(tmp_path):
    """Codes longer than 12 bytes (outside the Arrow view) are found, and near misses are not."""
    from casemix.scheme import load_scheme

    long_code = "A17.000+G01*X"  # 13 bytes
    longer = "T14.900x001+Z99.999"
    lists = "list,code,attr\nMDCP.pdx,P07.100,\nMDCP.pdx," + long_code + ",\nMDCP.pdx," + longer + ",\n"
    scheme = load_scheme(write(tmp_path / "long", **{"lists.csv": _tiny_lists() + lists.split("\n", 1)[1]}))
    index = code_index(scheme)
    probe = pl.Series([long_code, longer, long_code[:-1] + "Y", longer + "0", None, "P07.100"])
    ids = encode_codes(probe, index)
    assert ids.tolist() == encode_codes_polars(probe, index).tolist()
    assert ids[0] >= 0 and ids[1] >= 0 and ids[2] == -1 and ids[3] == -1 and ids[4] == -1


def _tiny_lists() -> str:
    from tests.tiny_scheme import FILES

    return FILES["lists.csv"]
