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


# -- |-joined texts: one pass of split and lookup, read as intake reads them -----------------
_PAIR_CODES = ("C34.100x001", "X00.x00", "A01.000x005+J17.0*", "A17.000+X01*", "T14.900x001+Z99.999")
_PAD = st.sampled_from(["", " ", "  ", "\t", "\r\n", "\x0b", "\x1c", "\u3000"])
_JUNK = st.text(alphabet=" \t+*|xXa.0\x1c\u3000†", max_size=6)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """The tiny scheme with long (> 12 bytes) dagger/asterisk codes and ``x`` codes."""
    from casemix.scheme import load_scheme

    lists = "".join(f"MDCP.pdx,{code},\n" for code in _PAIR_CODES)
    return load_scheme(write(tmp_path_factory.mktemp("pairs"), **{"lists.csv": _tiny_lists() + lists}))


@st.composite
def _joined_text(draw, codes: list[str]) -> str | None:
    """A ``|``-joined text of scheme codes, some untidy, unknown, blank or junk; or null."""
    from tests.strategies import messy

    parts = []
    for _ in range(draw(st.integers(0, 5))):
        code = draw(st.sampled_from(codes) | st.sampled_from(_PAIR_CODES))
        kind = draw(st.integers(0, 5))
        if kind == 1:
            code = draw(messy(code))  # case, padding, full width, dagger marks
        elif kind == 2:
            code = (
                draw(_PAD)
                + "".join(draw(st.sampled_from([c.lower(), c.upper(), c])) for c in code)
                + draw(_PAD)
            )
        elif kind == 3:
            code = draw(_JUNK)
        elif kind == 4:
            code = code + draw(st.sampled_from(["0", "+", "+x", "x"]))
        parts.append(code)
    if not parts:
        return draw(st.sampled_from([None, "", " "]))
    return "|".join(parts)


def _intake_reading(texts: list[str | None], index, first_apart: bool) -> list[tuple[int, list[int]]]:
    """Per ASCII text: (first id, other ids) as intake reads it (casemix.cases._build):
    split at ``|``, each code through the clean-up, blank codes dropped."""
    from casemix.cases import _normalise as N

    codes = [c for t in texts if t for c in t.split("|")]
    clean = (
        pl.DataFrame({"c": codes}, schema={"c": pl.String})
        .select(N.nonempty(N.code_chain(N.fold(pl.col("c")))))
        .to_series()
        .to_list()
    )
    out, k = [], 0
    for t in texts:
        row = clean[k : k + len(t.split("|"))] if t else []
        k += len(row)
        ids = [index.id_of(c) if c is not None else None for c in row]
        if first_apart:
            first = ABSENT if not ids or ids[0] is None else ids[0]
            ids = ids[1:]
        else:
            first = ABSENT
        out.append((first, [i for i in ids if i is not None]))
    return out


def _cheap(code: str) -> bool:
    # what the kernel rewrites as intake would: printable ASCII, no trailing "+" (see split_kernel)
    code = code.strip(" \t\n\x0b\x0c\r")
    return not code or (all("!" <= c <= "~" for c in code) and not code.endswith("+"))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), first_apart=st.booleans(), cut=st.integers(0, 12))
def test_joined_texts_are_read_as_intake_reads_them(pairs, data, first_apart, cut):
    """``encode_joined`` gives intake's ids (an unknown code ``-1``) for every row it does not
    flag; it flags a non-ASCII text (bit 1) and a code it cannot read as intake does (bit 2),
    and only those; chunks and offsets do not matter."""
    from casemix.encode import encode_joined

    index = code_index(pairs)
    codes = index.codes.to_list()
    texts = data.draw(st.lists(_joined_text(codes), min_size=1, max_size=25))
    series = pl.Series(texts, dtype=pl.String)
    cut = min(cut, len(texts))
    for variant in (series, pl.concat([series.slice(0, cut), series.slice(cut)], rechunk=False)):
        first, off, val, flags = encode_joined(variant, index, first_apart)
        assert len(first) == len(texts) and off[0] == 0 and off[-1] == len(val)
        want = _intake_reading(texts, index, first_apart)
        for i, text in enumerate(texts):
            non_ascii = text is not None and not text.isascii()
            assert bool(flags[i] & 1) == non_ascii, text
            assert bool(flags[i] & 4) == ("|" in (text or "")), text
            if non_ascii:
                continue  # intake folds it first: the caller sends it to intake
            got = (int(first[i]), val[off[i] : off[i + 1]].tolist())
            cheap = all(_cheap(c) for c in (text or "").split("|"))
            if not flags[i] & 3:
                assert got == want[i], (text, got, want[i])
            # a code the kernel cannot rewrite is flagged, unless found as it is
            assert bool(flags[i] & 2) == (not cheap and -1 in [got[0], *got[1]]), (text, got)
    tail = encode_joined(series.slice(cut), index, first_apart)
    whole = encode_joined(series, index, first_apart)
    assert tail[0].tolist() == whole[0][cut:].tolist()
    assert tail[2].tolist() == whole[2][whole[1][cut] :].tolist()


@settings(max_examples=40, deadline=None)
@given(data=st.data(), first_apart=st.booleans(), threads=st.integers(2, 5))
def test_joined_texts_split_on_many_ranges_as_on_one(pairs, data, first_apart, threads):
    """Each row range writes its ids from its first row's bound ((length + 1) // 2 codes per
    text at most) and the ranges' runs are joined: the same arrays as one range, for texts as
    dense in codes as a text can be ("a|a|a"), blank codes, nulls and real ones."""
    from casemix import _threads
    from casemix.encode import encode_joined

    index = code_index(pairs)
    codes = index.codes.to_list()
    dense = st.text(alphabet="a| ", max_size=11)
    drawn = data.draw(st.lists(st.one_of(_joined_text(codes), dense, st.none()), min_size=1, max_size=40))
    # and texts at the bound itself: k + 1 one-byte codes in 2k + 1 bytes
    for texts in (drawn, ["a|" * k + "a" for k in range(40)]):
        series = pl.Series(texts, dtype=pl.String)
        one = encode_joined(series, index, first_apart)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_threads, "threads", lambda: threads)
            mp.setattr(_threads, "MIN_ROWS_PER_THREAD", 1)
            many = encode_joined(series, index, first_apart)
        for a, b in zip(one, many, strict=True):
            assert a.tolist() == b.tolist(), texts


def test_joined_text_examples(pairs):
    from casemix.encode import encode_joined

    index = code_index(pairs)
    i50, pair = index.id_of("I50.000"), index.id_of("A01.000x005+J17.0*")
    x_pair, c34 = index.id_of("A17.000+X01*"), index.id_of("C34.100x001")
    texts = pl.Series(
        [
            "I50.000|| i50.000 |",
            " a01.000X005+j17.0* |\ta17.000+x01*|c34.100X001",
            "I50.000|nope|I50.000+",
            None,
            "",
            "|I50.000",
            "I50.000|I50．000",
        ]
    )
    first, off, val, flags = encode_joined(texts, index, True)
    assert first.tolist() == [i50, pair, i50, ABSENT, ABSENT, ABSENT, i50]
    rows = [val[a:b].tolist() for a, b in zip(off, off[1:], strict=False)]
    assert rows == [[i50], [x_pair, c34], [-1, -1], [], [], [i50], [-1]]
    # "nope" is unknown to intake too; "I50.000+" (a trailing "+") and "I50．000" are intake's to read
    assert (flags & 3).tolist() == [0, 0, 2, 0, 0, 0, 1 | 2]
    assert (flags & 4).tolist() == [4, 4, 4, 0, 0, 4, 4]  # a "|" in the text
    first, off, val, _ = encode_joined(texts, index, False)
    assert set(first.tolist()) == {ABSENT}
    rows = [val[a:b].tolist() for a, b in zip(off, off[1:], strict=False)]
    assert rows[:3] == [[i50, i50], [pair, x_pair, c34], [i50, -1, -1]]
