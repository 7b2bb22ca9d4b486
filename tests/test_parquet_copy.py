"""Parquet → Parquet with the input columns copied as chunks (``casemix._parquet``).

The output must read back exactly as the input frame with the seven result
columns attached, whatever wrote the input (polars, pyarrow with
dictionaries, page indexes, bloom filters, several row groups) and whatever
its column types; files the copy does not handle are re-encoded with the
same answer.
"""

from __future__ import annotations

import datetime as dt
import decimal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.tiny_scheme import write

import casemix
from casemix._parquet import ChunkWriter, decode, encode, read_footer
from casemix.drg.batch import group_parquet

ROWS = [
    dict(pdx="I50.000", sdx=["N17.900"], pproc=None, oproc=[], sex=1.0, age=60.0),
    dict(pdx="S06.000", sdx=["S27.100", "BAD.1"], pproc=None, oproc=[], sex=2.0, age=30.0),
    dict(pdx="I50.000", sdx=[], pproc="47.0100", oproc=[], sex=1.0, age=50.0),
    dict(pdx=None, sdx=[], pproc=None, oproc=[], sex=1.0, age=50.0),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from casemix.scheme import load_scheme

    return load_scheme(write(tmp_path_factory.mktemp("tiny-copy")))


def _cases(n: int) -> pl.DataFrame:
    """``n`` cases with columns of many types beside the grouping fields."""
    rows = [{"case_id": f"c{i}", **ROWS[i % len(ROWS)]} for i in range(n)]
    df = pl.DataFrame(rows)
    return df.with_columns(
        pl.int_range(n).cast(pl.Int64).alias("n"),
        (pl.int_range(n) % 3).cast(pl.String).cast(pl.Categorical).alias("ward"),
        pl.datetime_range(
            dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1) + dt.timedelta(hours=n - 1), "1h", eager=True
        )
        .dt.replace_time_zone("Asia/Shanghai")
        .alias("admitted"),
        pl.Series("cost", [decimal.Decimal(f"{i}.25") for i in range(n)], dtype=pl.Decimal(12, 2)),
        pl.when(pl.int_range(n) % 5 == 0).then(None).otherwise(pl.int_range(n) * 0.5).alias("maybe"),
        pl.struct(a=pl.int_range(n), b=pl.lit("x")).alias("nested"),
    )


def _want(df: pl.DataFrame, scheme, keep: list[str]) -> pl.DataFrame:
    result = casemix.group(df, scheme=scheme)
    return pl.concat([df.select(keep), result.select(result.columns[-7:])], how="horizontal")


@pytest.mark.parametrize("writer", ["polars", "pyarrow", "pyarrow-indexed"])
@pytest.mark.parametrize("keep", ["all", "none", ["nested", "case_id", "sdx"]])
def test_copied_columns_read_back_as_the_input(tiny, tmp_path, writer, keep):
    df = _cases(23)
    src = tmp_path / "in.parquet"
    if writer == "polars":
        df.write_parquet(src, row_group_size=5)
    else:
        # dictionary pages, and (indexed) page indexes and bloom filters: stored outside
        # the chunks, so the copy must drop them and still give a readable file
        extra = (
            {"write_page_index": True, "bloom_filter_options": {"case_id": True}}
            if "indexed" in writer
            else {}
        )
        try:
            pq.write_table(df.to_arrow(), src, row_group_size=5, **extra)
        except TypeError:  # a pyarrow without bloom filters
            pq.write_table(df.to_arrow(), src, row_group_size=5, write_page_index=True)
    info = group_parquet(src, tmp_path / "out.parquet", tiny, batch_size=12, progress=False, keep=keep)
    assert info["rows"] == 23 and info["batches"] == 3  # 10, 10 and 3 rows: whole row groups
    kept = df.columns if keep == "all" else [] if keep == "none" else keep
    got = pl.read_parquet(tmp_path / "out.parquet")
    want = _want(df, tiny, kept)
    assert got.schema == want.schema
    assert got.equals(want)
    # the output keeps the input's row groups, and pyarrow reads it (and each group) too
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [5, 5, 5, 5, 3]
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 23 and table.column_names == want.columns
    assert pl.from_arrow(pq.ParquetFile(tmp_path / "out.parquet").read_row_group(4)).equals(want.tail(3))


def test_a_row_group_larger_than_a_batch_is_re_encoded(tiny, tmp_path):
    df = _cases(23)
    df.write_parquet(tmp_path / "in.parquet", row_group_size=10)
    info = group_parquet(
        tmp_path / "in.parquet", tmp_path / "out.parquet", tiny, batch_size=4, progress=False
    )
    assert info["batches"] == 7  # groups of 10 (cut 4 + 3 + 3), 10 (alike) and 3
    assert pl.read_parquet(tmp_path / "out.parquet").equals(_want(df, tiny, df.columns))


@pytest.mark.parametrize("batch_size", [100, 4])  # chunks copied, and re-encoded
def test_a_grouped_file_grouped_again_has_each_result_column_once(tiny, tmp_path, batch_size):
    # the output of a first run as input: its old result columns are replaced where they
    # stand, as casemix.group replaces them, never written twice under one name
    df = _cases(23).with_columns(pl.lit("old").alias("drg"), pl.lit(1).alias("status"))
    df.write_parquet(tmp_path / "in.parquet", row_group_size=10)
    group_parquet(
        tmp_path / "in.parquet", tmp_path / "out.parquet", tiny, batch_size=batch_size, progress=False
    )
    got = pl.read_parquet(tmp_path / "out.parquet")
    assert got.equals(casemix.group(df, scheme=tiny))
    assert got.columns.index("drg") == df.columns.index("drg") and got["drg"].ne("old").all()


def test_chunk_writer_refuses_a_result_of_the_wrong_length(tmp_path):
    pl.DataFrame({"a": [1, 2, 3]}).write_parquet(tmp_path / "in.parquet")
    with open(tmp_path / "in.parquet", "rb") as src, open(tmp_path / "out.parquet", "wb") as out:
        footer = read_footer(src)
        writer = ChunkWriter(out, src, footer, ["a"], pq.read_schema(tmp_path / "in.parquet"), {})
        with pytest.raises(ValueError, match="row group 0 has 3 rows, the new columns 2"):
            writer.write(0, pa.table({"b": [1, 2]}))


def test_footers_of_real_writers_round_trip_byte_for_byte(tmp_path):
    df = _cases(40)
    df.write_parquet(tmp_path / "a.parquet", row_group_size=7)
    pq.write_table(df.to_arrow(), tmp_path / "b.parquet", row_group_size=9, write_page_index=True)
    for name in ("a", "b"):
        data = (tmp_path / f"{name}.parquet").read_bytes()
        length = int.from_bytes(data[-8:-4], "little")
        raw = data[-8 - length : -8]
        assert encode(decode(raw)) == raw


# any compact struct: nested structs, lists (short and long), maps, every scalar type
_scalar = st.one_of(
    st.tuples(st.just(1), st.booleans()),
    st.tuples(st.just(3), st.integers(-128, 127)),
    st.tuples(st.just(4), st.integers(-(2**15), 2**15 - 1)),
    st.tuples(st.just(5), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(6), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(7), st.floats(allow_nan=False)),
    st.tuples(st.just(8), st.binary(max_size=20)),
)


def _structs(children):
    return st.dictionaries(st.integers(1, 40), children, max_size=6)


_values = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.tuples(st.just(12), _structs(inner)),
        st.tuples(st.just(9), st.tuples(st.just(5), st.lists(st.integers(-(2**31), 2**31 - 1), max_size=20))),
        st.tuples(st.just(9), st.tuples(st.just(12), st.lists(_structs(inner), max_size=16))),
        st.tuples(st.just(9), st.tuples(st.just(1), st.lists(st.booleans(), max_size=3))),
        st.tuples(
            st.just(11),
            st.tuples(
                st.just(8),
                st.just(6),
                st.lists(st.tuples(st.binary(max_size=4), st.integers(0, 9)), max_size=3),
            ),
        ),
    ),
    max_leaves=12,
)


def _normal(v):
    """A bool field reads back with its wire type (1 true, 2 false); an empty map with no types."""
    t, x = v
    if t in (1, 2):
        return (1 if x else 2, x)
    if t == 12:
        return (12, {k: _normal(y) for k, y in x.items()})
    if t == 9 and x[0] == 12:
        return (9, (12, [{k: _normal(y) for k, y in s.items()} for s in x[1]]))
    if t == 11 and not x[2]:
        return (11, (0, 0, []))
    return v


@settings(max_examples=200, deadline=None)
@given(_structs(_values))
def test_compact_protocol_round_trips(s):
    want = {k: _normal(v) for k, v in s.items()}
    assert decode(encode(s)) == want
    assert encode(decode(encode(s))) == encode(s)


def test_group_table_writes_what_casemix_group_returns(tiny, tmp_path):
    from casemix.drg.batch import group_table

    # as a CSV arrives: every column text, codes as |-strings
    df = _cases(23).select(
        "case_id",
        pl.concat_str(pl.col("pdx").fill_null(""), pl.col("sdx").list.join("|"), separator="|")
        .str.strip_chars("|")
        .alias("diagnoses"),
        pl.col("pproc").fill_null("").alias("procedures"),
        pl.col("sex").cast(pl.String),
        pl.col("age").cast(pl.String),
        pl.lit("old").alias("drg"),
    )
    info = group_table(df, tmp_path / "out.parquet", tiny)
    assert info["rows"] == 23
    assert pl.read_parquet(tmp_path / "out.parquet").equals(casemix.group(df, scheme=tiny))
    info = group_table(df.head(0), tmp_path / "empty.parquet", tiny)
    empty = pl.read_parquet(tmp_path / "empty.parquet")
    assert info["rows"] == 0 and empty.height == 0 and empty.columns == casemix.group(df, scheme=tiny).columns


@pytest.mark.filterwarnings("ignore::casemix.errors.LowGroupingRateWarning")  # a quarter group
def test_group_table_stores_the_types_polars_would_and_few_valued_dictionaries(tiny, tmp_path):
    from casemix.drg.batch import group_table

    n = 70_000  # more than the 65,536 rows sampled for the dictionary choice
    df = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "diagnoses": ["I50.000|N17.900", "S06.000", None, "I50.000"] * (n // 4) + ["I50.000"] * (n % 4),
            "sex": ["1", "2"] * (n // 2),
            "age": ["60"] * n,
        }
    )
    group_table(df, tmp_path / "out.parquet", tiny)
    got = pl.read_parquet(tmp_path / "out.parquet")
    assert got.equals(casemix.group(df, scheme=tiny))
    schema = pq.read_schema(tmp_path / "out.parquet")
    # the Arrow types polars itself stores for text, though pyarrow encoded the string views
    assert [schema.field(c).type for c in df.columns] == [pa.large_string()] * 4
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [n]
    chunks = {meta.schema.column(j).name: meta.row_group(0).column(j) for j in range(meta.num_columns)}
    assert not chunks["case_id"].has_dictionary_page  # 65,536 distinct values in the sample
    assert chunks["sex"].has_dictionary_page and chunks["diagnoses"].has_dictionary_page
    # no min/max statistics: the rows are in case order, which lets no reader skip by them
    assert chunks["drg"].has_dictionary_page
    assert not chunks["case_id"].is_stats_set and not chunks["drg"].is_stats_set


@pytest.mark.filterwarnings("ignore::casemix.errors.LowGroupingRateWarning")
@pytest.mark.parametrize("batch_size", [4, 2])  # whole row groups: copied; cut: re-encoded
def test_group_parquet_result_columns_have_dictionaries_and_no_statistics(tmp_path, tiny, batch_size):
    from casemix.drg.batch import RESULT_NAMES, group_parquet

    df = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(8)],
            "pdx": ["I50.000", "S06.000"] * 4,
            "sdx": [["N17.900"], []] * 4,
            "age": [60, 70] * 4,
        }
    )
    src = tmp_path / "in.parquet"
    df.write_parquet(src, row_group_size=4, statistics=True)
    group_parquet(src, tmp_path / "out.parquet", tiny, batch_size=batch_size, progress=False)
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    for i in range(meta.num_row_groups):
        chunks = {meta.schema.column(j).path: meta.row_group(i).column(j) for j in range(meta.num_columns)}
        for name in (*RESULT_NAMES, "warnings"):
            assert chunks[name].has_dictionary_page and not chunks[name].is_stats_set, name
        # an input number keeps its statistics, copied or re-encoded (a file may be in date order)
        assert chunks["age"].is_stats_set


@pytest.mark.filterwarnings("ignore::casemix.errors.LowGroupingRateWarning")  # 2 of 6 cases group
def test_group_parquet_decodes_only_what_grouping_reads_and_answers_the_same(tiny, tmp_path):
    from casemix.drg.batch import grouping_columns

    # text numbers and dates with faults intake reports, a mapped column, identifiers
    # and unrelated columns: the copy path reads the grouping's columns alone
    df = pl.DataFrame(
        {
            "case_id": ["a", "b", "c", "d", "e", "f"],
            "hospital_id": ["H1"] * 6,
            "principal": ["I50.000", "S06.000", "i50.000 ", "I50.000", "XX.1", None],
            "sdx": [["N17.900"], [], ["BAD"], [], [], ["I50.000"]],
            "sex": ["1", "2", "1", "1", "2", "1"],
            "age": ["60", "abc", "30", "1e300", "-5", "40"],
            "fund_paid": ["1.5", "x", None, "2", "3", "4"],
            "admission_date": ["2024-01-02", "2024-13-01", None, "2024-02-01", "", "2024-03-01"],
            "note": ["n"] * 6,
        }
    )
    mapping = {"principal": "pdx"}
    used = ["principal", "sdx", "sex", "age", "fund_paid", "admission_date"]
    assert grouping_columns(df.head(0), mapping) == used
    assert grouping_columns(df.head(0).drop("principal"), None) == used[1:]
    df.write_parquet(tmp_path / "in.parquet", row_group_size=2)
    group_parquet(tmp_path / "in.parquet", tmp_path / "out.parquet", tiny, progress=False, mapping=mapping)
    want = casemix.group(df, scheme=tiny, mapping=mapping)
    assert want["warnings"].str.contains("malformed:fund_paid").any()
    assert pl.read_parquet(tmp_path / "out.parquet").equals(want)
    # a layout that does not resolve: every column is read and grouping reports the fault
    assert grouping_columns(df.head(0).drop("principal", "sdx"), None) is None


def test_chunk_writer_refuses_a_footer_that_does_not_read_back(tmp_path, monkeypatch):
    import casemix._parquet as P

    pl.DataFrame({"a": [1, 2, 3]}).write_parquet(tmp_path / "in.parquet")

    def written(tamper) -> None:
        with open(tmp_path / "in.parquet", "rb") as src, open(tmp_path / "out.parquet", "wb") as out:
            footer = read_footer(src)
            writer = ChunkWriter(out, src, footer, ["a", "b"], pq.read_schema(tmp_path / "in.parquet"), {})
            writer.write(0, pa.table({"b": [1, 2, 3]}))
            tamper(writer)
            writer.close()

    written(lambda w: None)  # untouched: it reads back
    assert pl.read_parquet(tmp_path / "out.parquet")["b"].to_list() == [1, 2, 3]
    with pytest.raises(ValueError, match="not the 3 rows"):
        written(lambda w: w.row_groups[0].update({3: (6, 4)}))  # a row group of 4 rows in a file of 3
    with pytest.raises(ValueError, match="outside the file"):
        written(lambda w: setattr(w, "pos", 10))  # chunks beyond the bytes written
    monkeypatch.setattr(P, "encode", lambda meta: encode(meta)[:-3])
    with pytest.raises(ValueError, match="does not read back"):
        written(lambda w: None)


# generated files: any mix of column types, nulls and row groups, written by polars or
# pyarrow, gets new columns placed anywhere (replacing an input column or not); the
# output must read back, through polars and pyarrow, as the input with those columns
_KINDS = {
    "text": lambda i: None if i % 7 == 3 else f"t{i % 5}" * (i % 3),
    "int": lambda i: None if i % 4 == 1 else i * 3 - 40,
    "float": lambda i: i / 3,
    "list": lambda i: None if i % 9 == 2 else [f"c{j}" for j in range(i % 4)],
    "date": lambda i: dt.date(2024, 1, 1) + dt.timedelta(days=i),
}


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    kinds=st.lists(st.sampled_from(sorted(_KINDS)), min_size=1, max_size=5),
    group_rows=st.integers(1, 17),
    writer=st.sampled_from(["polars", "pyarrow"]),
    where=st.data(),
)
def test_generated_files_read_back_with_new_columns_among_the_copied(
    tmp_path_factory, rows, kinds, group_rows, writer, where
):
    tmp = tmp_path_factory.mktemp("gen")
    df = pl.DataFrame({f"{k}{j}": [_KINDS[k](i) for i in range(rows)] for j, k in enumerate(kinds)})
    if writer == "polars":
        df.write_parquet(tmp / "in.parquet", row_group_size=group_rows)
    else:
        pq.write_table(df.to_arrow(), tmp / "in.parquet", row_group_size=group_rows)
    replaced = where.draw(st.sampled_from([None, *df.columns]))
    new = pl.DataFrame(
        {"drg": [f"D{i}" for i in range(rows)], (replaced or "x"): pl.int_range(rows, eager=True)}
    )
    layout = list(df.columns) if replaced else where.draw(st.permutations([*df.columns, "x"]))
    layout.append("drg")
    with open(tmp / "in.parquet", "rb") as src, open(tmp / "out.parquet", "wb") as out:
        footer = read_footer(src)
        w = ChunkWriter(out, src, footer, layout, pq.read_schema(tmp / "in.parquet"), {"compression": "zstd"})
        offset = 0
        table = new.to_arrow()
        for k, n in enumerate(footer.row_group_rows()):
            w.write(k, table.slice(offset, n))
            offset += n
        w.close()
    want = pl.concat([df, new], how="horizontal") if replaced is None else df.with_columns(new)
    want = want.select(layout)
    assert pl.read_parquet(tmp / "out.parquet").equals(want)
    assert pl.from_arrow(pq.read_table(tmp / "out.parquet")).equals(want)


@pytest.mark.filterwarnings("ignore::casemix.errors.LowGroupingRateWarning")
def test_group_table_joins_row_groups_encoded_apart(tiny, tmp_path, monkeypatch):
    import casemix.drg.batch as batch
    from casemix._parquet import concat_files, encode_row_group

    monkeypatch.setattr(batch, "ROW_GROUP_ROWS", 7)
    df = pl.DataFrame(
        {
            "drg": ["old"] * 23,  # replaced where it stands
            "diagnoses": ["I50.000|N17.900", "S06.000|S27.100|BAD.1", None, "I50.000"] * 5 + ["S06.000"] * 3,
            "sex": ["1", "2", None] * 7 + ["1", "1"],
            "age": [str(i * 4) for i in range(23)],
        }
    )
    batch.group_table(df, tmp_path / "out.parquet", tiny)
    want = casemix.group(df, scheme=tiny)
    assert pl.read_parquet(tmp_path / "out.parquet").equals(want)
    assert pl.from_arrow(pq.read_table(tmp_path / "out.parquet")).equals(want)
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [7, 7, 7, 2]
    # a column name with a NUL character: polars encodes the frame, the same answer
    odd = df.rename({"sex": "s\x00x"}).with_columns(pl.col("s\x00x").alias("sex"))
    batch.group_table(odd, tmp_path / "odd.parquet", tiny)
    assert pl.read_parquet(tmp_path / "odd.parquet").equals(casemix.group(odd, scheme=tiny))
    # parts of different columns are refused rather than joined into a wrong file
    a, b = (pl.DataFrame({name: [1]}).to_arrow() for name in ("a", "b"))
    parts = [encode_row_group(t, {}) for t in (a, b)]
    with open(tmp_path / "bad.parquet", "wb") as out, pytest.raises(ValueError, match="different columns"):
        concat_files(out, parts, a.schema)
