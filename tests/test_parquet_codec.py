"""The Parquet codec every writer uses (``casemix.io.PARQUET_COMPRESSION``) and asking for another.

The codec is read from each column chunk's metadata (pyarrow), so a writer
that ignores the option, or one that does not use the constant, fails here.
"""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import casemix
from casemix.cli import main
from casemix.drg.batch import group_csv, group_parquet, group_table
from casemix.errors import InputError
from casemix.io import PARQUET_COMPRESSION, parquet_options, write_table
from casemix.synth import synth_cases

SCHEME = "casemix-demo"
RESULTS = {"mdc", "adrg", "drg", "severity", "status", "reason", "warnings"}
#: pyarrow's names of the codecs in a file's metadata (its "lz4" is Parquet's LZ4_RAW, shown as LZ4)
SHOWN = {"lz4": "LZ4", "zstd": "ZSTD", "snappy": "SNAPPY", "none": "UNCOMPRESSED"}


@pytest.fixture(scope="module")
def cases():
    return synth_cases(SCHEME, 300, seed=8)


def codecs(path, columns=None) -> set[str]:
    """The codecs of the column chunks of ``columns`` (default: all) in every row group."""
    meta = pq.ParquetFile(path).metadata
    out = set()
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        for j in range(rg.num_columns):
            chunk = rg.column(j)
            if columns is None or chunk.path_in_schema.split(".")[0] in columns:
                out.add(chunk.compression)
    return out


def test_default_is_lz4_raw_and_zstd_keeps_its_level():
    assert PARQUET_COMPRESSION == "lz4"
    assert parquet_options() == {"compression": "lz4"}
    assert parquet_options("zstd") == {"compression": "zstd", "compression_level": 1}
    assert parquet_options("none") == {"compression": "none"}
    assert parquet_options("none", polars=True) == {"compression": "uncompressed"}


@pytest.mark.parametrize("bad", ["gzip", "ZSTD", "", "lz4_raw"])
def test_an_unknown_codec_is_refused_naming_the_choices(bad):
    with pytest.raises(InputError, match=r"unknown Parquet compression .*lz4, zstd, snappy, none"):
        parquet_options(bad)


@pytest.mark.parametrize("compression", [None, "zstd", "snappy", "none"])
def test_write_table_uses_the_codec_asked_for(cases, tmp_path, compression):
    write_table(cases, tmp_path / "x.parquet", compression=compression)
    assert codecs(tmp_path / "x.parquet") == {SHOWN[compression or PARQUET_COMPRESSION]}
    assert pl.read_parquet(tmp_path / "x.parquet").equals(cases)


def test_write_table_refuses_an_unknown_codec_before_writing(cases, tmp_path):
    with pytest.raises(InputError, match="unknown Parquet compression 'brotli'"):
        write_table(cases, tmp_path / "x.csv", compression="brotli")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_group_parquet_encodes_the_result_columns_with_the_codec_and_copies_the_rest(
    cases, tmp_path, compression
):
    cases.write_parquet(tmp_path / "in.parquet", compression="snappy", row_group_size=100)
    group_parquet(
        tmp_path / "in.parquet", tmp_path / "out.parquet", SCHEME, progress=False, compression=compression
    )
    assert codecs(tmp_path / "out.parquet", RESULTS) == {SHOWN[compression or PARQUET_COMPRESSION]}
    # the input's column chunks are copied as they are, codec and all
    assert codecs(tmp_path / "out.parquet", set(cases.columns)) == {"SNAPPY"}
    # re-encoded (a row group larger than a batch): every column gets the codec
    group_parquet(
        tmp_path / "in.parquet",
        tmp_path / "re.parquet",
        SCHEME,
        batch_size=50,
        progress=False,
        compression=compression,
    )
    assert codecs(tmp_path / "re.parquet") == {SHOWN[compression or PARQUET_COMPRESSION]}
    out = pl.read_parquet(tmp_path / "re.parquet")
    assert out.equals(pl.read_parquet(tmp_path / "out.parquet"))
    assert out.equals(casemix.group(cases, scheme=SCHEME))


def test_group_parquet_refuses_an_unknown_codec(cases, tmp_path):
    cases.write_parquet(tmp_path / "in.parquet")
    with pytest.raises(InputError, match="unknown Parquet compression 'zstd-1'"):
        group_parquet(tmp_path / "in.parquet", tmp_path / "out.parquet", SCHEME, compression="zstd-1")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_group_table_and_group_csv_use_the_codec(cases, tmp_path, compression):
    # a typed frame (polars encodes it, the results added as chunks) and a CSV (pyarrow, text)
    group_table(cases, tmp_path / "typed.parquet", SCHEME, compression=compression)
    assert codecs(tmp_path / "typed.parquet") == {SHOWN[compression]}
    text = synth_cases(SCHEME, 200, seed=9, layout="strings")
    text.write_csv(tmp_path / "in.csv")
    group_csv(tmp_path / "in.csv", tmp_path / "text.parquet", SCHEME, compression=compression)
    assert codecs(tmp_path / "text.parquet") == {SHOWN[compression]}
    with pytest.raises(InputError, match="unknown Parquet compression"):
        group_csv(tmp_path / "in.csv", tmp_path / "bad.parquet", SCHEME, compression="fast")
    with pytest.raises(InputError, match="unknown Parquet compression"):
        group_table(cases, tmp_path / "bad.parquet", SCHEME, compression="fast")


def test_group_command_compression_option(cases, tmp_path):
    cases.write_parquet(tmp_path / "in.parquet")
    runner = CliRunner()
    demo = ["--scheme", SCHEME, "--quiet"]
    ok = runner.invoke(
        main,
        [
            "group",
            str(tmp_path / "in.parquet"),
            "-o",
            str(tmp_path / "z.parquet"),
            "--compression",
            "zstd",
            *demo,
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert codecs(tmp_path / "z.parquet", RESULTS) == {"ZSTD"}
    plain = runner.invoke(
        main, ["group", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "d.parquet"), *demo]
    )
    assert plain.exit_code == 0, plain.output
    assert codecs(tmp_path / "d.parquet", RESULTS) == {SHOWN[PARQUET_COMPRESSION]}
    assert pl.read_parquet(tmp_path / "z.parquet").equals(pl.read_parquet(tmp_path / "d.parquet"))
    bad = runner.invoke(
        main,
        [
            "group",
            str(tmp_path / "in.parquet"),
            "-o",
            str(tmp_path / "b.parquet"),
            "--compression",
            "gzip",
            *demo,
        ],
    )
    assert bad.exit_code == 2 and "'gzip' is not one of" in bad.output
    not_parquet = runner.invoke(
        main,
        [
            "group",
            str(tmp_path / "in.parquet"),
            "-o",
            str(tmp_path / "x.csv"),
            "--compression",
            "zstd",
            *demo,
        ],
    )
    assert not_parquet.exit_code == 2 and "--compression applies to Parquet output" in not_parquet.output
    assert not (tmp_path / "b.parquet").exists() and not (tmp_path / "x.csv").exists()
