"""Parquet files assembled from column chunks copied as bytes.

``casemix group in.parquet -o out.parquet`` writes every input column
unchanged next to seven new ones.  Decoding those columns and encoding them
again is most of the cost of the whole run, so :class:`ChunkWriter` copies
the input's column chunks (their pages, compressed as they are) byte for
byte into the output and encodes only the new columns, with pyarrow, in
memory.  The output's footer is the input's footer for the kept columns,
offsets moved, joined with the new columns' footer.

A Parquet footer is a Thrift struct in the compact protocol
(https://github.com/apache/parquet-format, ``parquet.thrift``).
:func:`decode` and :func:`encode` read and write any compact struct
generically, field id → (type, value), so fields this module does not know
pass through unchanged.  What is dropped: the page indexes and the bloom
filters (stored outside the chunks; readers do without them) and the
input's key-value metadata except the Arrow schema, which is rebuilt for
the output's columns.

What is refused (:func:`copyable` says why, and ``group_parquet`` then
decodes and encodes the columns as before): encrypted files, chunks kept in
another file, and a chunk whose byte range is not inside the file.

A footer this codec wrote is checked before :meth:`ChunkWriter.close`
returns: pyarrow parses it (``pyarrow.parquet.read_metadata``) and its rows,
row groups, columns and chunk byte ranges must be those written, so a codec
bug raises instead of leaving a file that looks complete (well under a
millisecond per footer; ``tests/test_parquet_copy.py`` also reads back
generated files through polars and pyarrow).
"""

from __future__ import annotations

import base64
import io
import struct
from typing import Any, BinaryIO

import pyarrow as pa

__all__ = [
    "ChunkWriter",
    "Footer",
    "PartWriter",
    "concat_files",
    "copyable",
    "decode",
    "encode",
    "encode_row_group",
    "read_footer",
]

MAGIC = b"PAR1"
ARROW_SCHEMA = b"ARROW:schema"

# compact protocol type ids
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

# parquet.thrift field ids used here
_FMD_SCHEMA, _FMD_NUM_ROWS, _FMD_ROW_GROUPS, _FMD_KV, _FMD_CREATED_BY, _FMD_ORDERS = 2, 3, 4, 5, 6, 7
_FMD_ENCRYPTION = 8
_SE_NAME, _SE_CHILDREN = 4, 5
_RG_COLUMNS, _RG_BYTES, _RG_ROWS, _RG_SORTING, _RG_OFFSET, _RG_COMPRESSED, _RG_ORDINAL = range(1, 8)
_CC_PATH, _CC_OFFSET, _CC_META = 1, 2, 3
_CC_PAGE_INDEX = (4, 5, 6, 7)
_CC_CRYPTO = (8, 9)
_CM_UNCOMPRESSED, _CM_COMPRESSED, _CM_DATA, _CM_INDEX, _CM_DICT = 6, 7, 9, 10, 11
_CM_BLOOM = (14, 15)

Struct = dict[int, tuple[int, Any]]


# --------------------------------------------------------------------------- compact protocol


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        out = shift = 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, t: int) -> Any:
        if t in (_TRUE, _FALSE):  # a bool inside a list or map: one byte
            return self.byte() == _TRUE
        if t == _BYTE:
            return struct.unpack("b", bytes([self.byte()]))[0]
        if t in (_I16, _I32, _I64):
            return self.zigzag()
        if t == _DOUBLE:
            self.pos += 8
            return struct.unpack("<d", self.data[self.pos - 8 : self.pos])[0]
        if t == _BINARY:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n : self.pos]
        if t in (_LIST, _SET):
            head = self.byte()
            size, et = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return (et, [self.value(et) for _ in range(size)])
        if t == _MAP:
            size = self.varint()
            if not size:
                return (0, 0, [])
            kinds = self.byte()
            kt, vt = kinds >> 4, kinds & 0x0F
            return (kt, vt, [(self.value(kt), self.value(vt)) for _ in range(size)])
        if t == _STRUCT:
            return self.struct()
        raise ValueError(f"unknown Thrift compact type {t}")

    def struct(self) -> Struct:
        out: Struct = {}
        fid = 0
        while True:
            head = self.byte()
            if head == 0:
                return out
            t, delta = head & 0x0F, head >> 4
            fid = fid + delta if delta else self.zigzag()
            out[fid] = (t, t == _TRUE if t in (_TRUE, _FALSE) else self.value(t))


def decode(data: bytes) -> Struct:
    """A Thrift compact-protocol struct as ``{field id: (type, value)}`` (nested alike)."""
    return _Reader(data).struct()


def _varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(out: bytearray, n: int) -> None:
    _varint(out, (n << 1) ^ (n >> 63))


def _value(out: bytearray, t: int, v: Any) -> None:
    if t in (_TRUE, _FALSE):
        out.append(_TRUE if v else _FALSE)
    elif t == _BYTE:
        out += struct.pack("b", v)
    elif t in (_I16, _I32, _I64):
        _zigzag(out, v)
    elif t == _DOUBLE:
        out += struct.pack("<d", v)
    elif t == _BINARY:
        _varint(out, len(v))
        out += v
    elif t in (_LIST, _SET):
        et, items = v
        if len(items) < 15:
            out.append(len(items) << 4 | et)
        else:
            out.append(0xF0 | et)
            _varint(out, len(items))
        for item in items:
            _value(out, et, item)
    elif t == _MAP:
        kt, vt, items = v
        _varint(out, len(items))
        if items:
            out.append(kt << 4 | vt)
            for k, x in items:
                _value(out, kt, k)
                _value(out, vt, x)
    elif t == _STRUCT:
        _struct(out, v)
    else:
        raise ValueError(f"unknown Thrift compact type {t}")


def _struct(out: bytearray, s: Struct) -> None:
    last = 0
    for fid in sorted(s):
        t, v = s[fid]
        wire = (_TRUE if v else _FALSE) if t in (_TRUE, _FALSE) else t
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | wire)
        else:
            out.append(wire)
            _zigzag(out, fid)
        if t not in (_TRUE, _FALSE):
            _value(out, t, v)
        last = fid
    out.append(0)


def encode(s: Struct) -> bytes:
    """The compact-protocol bytes of a struct :func:`decode` returned."""
    out = bytearray()
    _struct(out, s)
    return bytes(out)


# --------------------------------------------------------------------------- footers


class Footer:
    """A Parquet file's footer: top-level columns, their schema elements and chunks."""

    def __init__(self, meta: Struct) -> None:
        self.meta = meta
        elements = meta[_FMD_SCHEMA][1][1]
        #: per top-level column: (name, schema elements, number of leaf columns)
        self.columns: list[tuple[str, list[Struct], int]] = []
        i = 1
        while i < len(elements):
            start, todo, leaves = i, 1, 0
            while todo:  # walk the subtree depth first: a group's children follow it
                todo -= 1
                children = elements[i].get(_SE_CHILDREN, (0, 0))[1]
                todo += children
                leaves += children == 0
                i += 1
            self.columns.append((elements[start][_SE_NAME][1].decode(), elements[start:i], leaves))

    @property
    def row_groups(self) -> list[Struct]:
        return self.meta[_FMD_ROW_GROUPS][1][1] if _FMD_ROW_GROUPS in self.meta else []

    def row_group_rows(self) -> list[int]:
        """Rows of each row group."""
        return [rg[_RG_ROWS][1] for rg in self.row_groups]

    def leaves(self, names: list[str]) -> list[int]:
        """Leaf column indexes of the top-level columns ``names``, in that order."""
        first: dict[str, tuple[int, int]] = {}
        k = 0
        for name, _, n in self.columns:
            first[name] = (k, n)
            k += n
        return [j for name in names for j in range(first[name][0], first[name][0] + first[name][1])]

    def elements(self, names: list[str]) -> list[Struct]:
        by_name = {name: els for name, els, _ in self.columns}
        return [e for name in names for e in by_name[name]]

    def orders(self, leaves: list[int]) -> list[Struct] | None:
        if _FMD_ORDERS not in self.meta:
            return None
        orders = self.meta[_FMD_ORDERS][1][1]
        return [orders[j] for j in leaves]


def read_footer(source: BinaryIO | bytes) -> Footer:
    """The footer of a Parquet file (an open binary file or its bytes)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    source.seek(-8, io.SEEK_END)
    tail = source.read(8)
    if tail[4:] != MAGIC:
        raise ValueError("not a Parquet file (no PAR1 at its end)")
    length = struct.unpack("<i", tail[:4])[0]
    source.seek(-8 - length, io.SEEK_END)
    return Footer(decode(source.read(length)))


def _chunk_range(meta: Struct) -> tuple[int, int]:
    """(first byte, length) of a column chunk's pages."""
    start = meta[_CM_DATA][1]
    if _CM_DICT in meta and 0 < meta[_CM_DICT][1] < start:
        start = meta[_CM_DICT][1]
    return start, meta[_CM_COMPRESSED][1]


def copyable(footer: Footer, size: int) -> str | None:
    """Why the file's column chunks cannot be copied, or ``None`` when they can."""
    if _FMD_ENCRYPTION in footer.meta:
        return "the file is encrypted"
    for rg in footer.row_groups:
        for cc in rg[_RG_COLUMNS][1][1]:
            if _CC_PATH in cc or any(f in cc for f in _CC_CRYPTO) or _CC_META not in cc:
                return "a column chunk is kept in another file or encrypted"
            start, length = _chunk_range(cc[_CC_META][1])
            if start < len(MAGIC) or start + length > size:
                return "a column chunk's byte range lies outside the file"
    return None


def _moved(cc: Struct, shift: int) -> Struct:
    """A ColumnChunk whose pages now start ``shift`` bytes later, page index and bloom filter dropped."""
    meta = dict(cc[_CC_META][1])
    for f in (_CM_DATA, _CM_INDEX, _CM_DICT):
        if f in meta and meta[f][1] > 0:
            meta[f] = (meta[f][0], meta[f][1] + shift)
    for f in _CM_BLOOM:
        meta.pop(f, None)
    out = {f: v for f, v in cc.items() if f not in _CC_PAGE_INDEX}
    out[_CC_META] = (_STRUCT, meta)
    if out.get(_CC_OFFSET, (0, 0))[1] > 0:
        out[_CC_OFFSET] = (_I64, out[_CC_OFFSET][1] + shift)
    return out


# --------------------------------------------------------------------------- the writer


def encode_row_group(table: pa.Table, write_options: dict[str, Any]) -> bytes:
    """``table`` as a Parquet file of one row group (pyarrow, in memory).

    What :meth:`ChunkWriter.write` copies the new columns' chunks from, and
    what :func:`concat_files` joins; pyarrow releases the GIL while it
    encodes, so row groups can be encoded on threads.
    """
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(table.num_rows, 1), **write_options)
    return buf.getvalue()


class ChunkWriter:
    """Write a Parquet file of input columns copied as chunks and new columns among them.

    Call :meth:`write` once per row group of ``src``, in order, with that
    row group's new columns as an Arrow table; then :meth:`close`.

    Parameters
    ----------
    out
        The output file, open for binary writing.
    src
        The input Parquet file, open for binary reading.
    footer
        ``read_footer(src)``.
    layout
        The output's top-level columns in order: a name of the new table's
        columns is taken from it (so a new column replaces an input column
        of its name where it stands), any other name is copied from ``src``.
    arrow_schema
        The input's Arrow schema (``pyarrow.parquet.read_schema``): the
        copied fields give the output's Arrow schema metadata.
    write_options
        Passed to ``pyarrow.parquet.write_table`` for the new columns.
    """

    def __init__(
        self,
        out: BinaryIO,
        src: BinaryIO,
        footer: Footer,
        layout: list[str],
        arrow_schema: pa.Schema,
        write_options: dict[str, Any],
    ) -> None:
        self.out, self.src, self.footer, self.layout = out, src, footer, layout
        self.input_schema = arrow_schema
        self.options = write_options
        self.row_groups: list[Struct] = []
        self.new: Footer | None = None
        self.new_schema: pa.Schema | None = None
        self.rows = 0
        out.write(MAGIC)
        self.pos = len(MAGIC)

    def _copy(self, source: BinaryIO, cc: Struct) -> Struct:
        start, length = _chunk_range(cc[_CC_META][1])
        source.seek(start)
        data = source.read(length)
        if len(data) != length:
            raise ValueError("a column chunk ends past the end of the input file")
        moved = _moved(cc, self.pos - start)
        self.out.write(data)
        self.pos += length
        return moved

    def _footer_of(self, name: str) -> Footer:
        assert self.new is not None and self.new_schema is not None
        return self.new if name in self.new_schema.names else self.footer

    def write(self, index: int, table: pa.Table) -> None:
        """Row group ``index`` of the input: its columns copied, ``table``'s among them."""
        rg = self.footer.row_groups[index]
        rows = rg[_RG_ROWS][1]
        if table.num_rows != rows:
            raise ValueError(f"row group {index} has {rows} rows, the new columns {table.num_rows}")
        data = encode_row_group(table, self.options)
        buf = io.BytesIO(data)
        footer = read_footer(data)
        if self.new is None:
            self.new, self.new_schema = footer, table.schema
            missing = [c for c in table.column_names if c not in self.layout]
            if missing:
                raise ValueError(f"new columns {missing} are not in the layout")
        (new_rg,) = footer.row_groups
        new_names = set(table.column_names)
        start = self.pos
        chunks = []
        for name in self.layout:
            of, source, group = (footer, buf, new_rg) if name in new_names else (self.footer, self.src, rg)
            columns = group[_RG_COLUMNS][1][1]
            chunks += [self._copy(source, columns[j]) for j in of.leaves([name])]
        metas = [cc[_CC_META][1] for cc in chunks]
        out: Struct = {
            _RG_COLUMNS: (_LIST, (_STRUCT, chunks)),
            _RG_BYTES: (_I64, sum(m[_CM_UNCOMPRESSED][1] for m in metas)),
            _RG_ROWS: (_I64, rows),
            _RG_OFFSET: (_I64, start),
            _RG_COMPRESSED: (_I64, self.pos - start),
            _RG_ORDINAL: (_I16, len(self.row_groups)),
        }
        self.row_groups.append(out)
        self.rows += rows

    def close(self) -> None:
        """Write the footer (call after the last :meth:`write`)."""
        if self.new is None or self.new_schema is None:
            raise ValueError("ChunkWriter.close before any row group was written")
        new, new_schema = self.new, self.new_schema
        fields = [
            (new_schema if name in new_schema.names else self.input_schema).field(name)
            for name in self.layout
        ]
        root = dict(new.meta[_FMD_SCHEMA][1][1][0])
        root[_SE_CHILDREN] = (_I32, len(self.layout))
        elements = [e for name in self.layout for e in self._footer_of(name).elements([name])]
        meta: Struct = {
            1: new.meta[1],
            _FMD_SCHEMA: (_LIST, (_STRUCT, [root, *elements])),
            _FMD_NUM_ROWS: (_I64, self.rows),
            _FMD_ROW_GROUPS: (_LIST, (_STRUCT, self.row_groups)),
            _FMD_KV: (
                _LIST,
                (_STRUCT, [{1: (_BINARY, ARROW_SCHEMA), 2: (_BINARY, _arrow_schema(pa.schema(fields)))}]),
            ),
            _FMD_CREATED_BY: new.meta[_FMD_CREATED_BY],
        }
        orders = []
        for name in self.layout:
            of = self._footer_of(name)
            some = of.orders(of.leaves([name]))
            if some is None:
                break
            orders += some
        else:
            meta[_FMD_ORDERS] = (_LIST, (_STRUCT, orders))
        data = encode(meta)
        check_footer(data, self.rows, len(self.row_groups), len(fields), self.pos)
        self.out.write(data)
        self.out.write(struct.pack("<i", len(data)))
        self.out.write(MAGIC)


def check_footer(data: bytes, rows: int, row_groups: int, columns: int, end: int) -> None:
    """pyarrow reads the footer ``data`` back as what was written, or ``ValueError``.

    ``rows`` in ``row_groups`` row groups, ``columns`` top-level columns, every
    column chunk inside bytes 4 to ``end`` of the file.  A bug of this codec
    must never leave a complete-looking file that a reader refuses or
    misreads; the caller's atomic write then removes it.
    """
    import pyarrow.parquet as pq

    tail = io.BytesIO(MAGIC + data + struct.pack("<i", len(data)) + MAGIC)
    try:
        meta = pq.read_metadata(tail)
        groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
        chunks = [g.column(j) for g in groups for j in range(g.num_columns)]
        fields = len(meta.schema.to_arrow_schema())
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"the footer written does not read back: {exc}") from None

    def inside(c) -> bool:  # the chunk's pages lie in the bytes written before the footer
        start = c.data_page_offset
        if c.has_dictionary_page and 0 < (c.dictionary_page_offset or 0) < start:
            start = c.dictionary_page_offset
        return len(MAGIC) <= start and start + c.total_compressed_size <= end

    if (
        meta.num_rows != rows
        or sum(g.num_rows for g in groups) != rows
        or len(groups) != row_groups
        or fields != columns
        or any(g.num_columns != meta.num_columns for g in groups)
        or not all(map(inside, chunks))
    ):
        raise ValueError(
            f"the footer written reads back as {meta.num_rows} rows in {len(groups)} row groups "
            f"and {fields} columns, not the {rows} rows, {row_groups} row groups "
            f"and {columns} columns written, or a column chunk lies outside the file"
        )


class PartWriter:
    """Write Parquet files of the same columns, given one at a time, as one file to ``out``.

    Each part's pages are copied as they are, after the previous part's, and
    :meth:`close` writes one footer listing every part's row groups, offsets
    moved; ``arrow_schema`` is the Arrow schema stored for readers.  Lets row
    groups be encoded on several threads (:func:`encode_row_group`) and
    written as they come, without encoding again or holding them all.
    """

    def __init__(self, out: BinaryIO, arrow_schema: pa.Schema) -> None:
        self.out, self.arrow_schema = out, arrow_schema
        self.first: Footer | None = None
        self.groups: list[Struct] = []
        self.rows = 0
        out.write(MAGIC)
        self.pos = len(MAGIC)

    def add(self, data: bytes) -> None:
        """Append the row groups of the Parquet file ``data`` (its bytes)."""
        footer = read_footer(data)
        if self.first is None:
            self.first = footer
        elif footer.meta[_FMD_SCHEMA] != self.first.meta[_FMD_SCHEMA]:
            raise ValueError("the parts to join have different columns")
        length = struct.unpack("<i", data[-8:-4])[0]
        body = memoryview(data)[len(MAGIC) : len(data) - 8 - length]
        shift = self.pos - len(MAGIC)
        for rg in footer.row_groups:
            moved = dict(rg)
            moved[_RG_COLUMNS] = (_LIST, (_STRUCT, [_moved(cc, shift) for cc in rg[_RG_COLUMNS][1][1]]))
            if _RG_OFFSET in rg:
                moved[_RG_OFFSET] = (_I64, rg[_RG_OFFSET][1] + shift)
            moved[_RG_ORDINAL] = (_I16, len(self.groups))
            self.groups.append(moved)
            self.rows += rg[_RG_ROWS][1]
        self.out.write(body)
        self.pos += len(body)

    def close(self) -> int:
        """Write the footer (after the last :meth:`add`); returns the rows written."""
        if self.first is None:
            raise ValueError("PartWriter.close before any part was added")
        first = self.first
        meta: Struct = {
            1: first.meta[1],
            _FMD_SCHEMA: first.meta[_FMD_SCHEMA],
            _FMD_NUM_ROWS: (_I64, self.rows),
            _FMD_ROW_GROUPS: (_LIST, (_STRUCT, self.groups)),
            _FMD_KV: (
                _LIST,
                (_STRUCT, [{1: (_BINARY, ARROW_SCHEMA), 2: (_BINARY, _arrow_schema(self.arrow_schema))}]),
            ),
        }
        for field in (_FMD_CREATED_BY, _FMD_ORDERS):
            if field in first.meta:
                meta[field] = first.meta[field]
        data = encode(meta)
        check_footer(data, self.rows, len(self.groups), len(first.columns), self.pos)
        self.out.write(data)
        self.out.write(struct.pack("<i", len(data)))
        self.out.write(MAGIC)
        return self.rows


def concat_files(out: BinaryIO, parts: list[bytes], arrow_schema: pa.Schema) -> int:
    """Write Parquet files of the same columns (``parts``, their bytes) as one file to ``out``.

    :class:`PartWriter` with every part at once.  Returns the rows written.
    """
    if not parts:
        raise ValueError("concat_files needs at least one part")
    writer = PartWriter(out, arrow_schema)
    for data in parts:
        writer.add(data)
    return writer.close()


def _arrow_schema(schema: pa.Schema) -> bytes:
    """The ``ARROW:schema`` value Arrow writes: the IPC schema message, base64."""
    return base64.b64encode(schema.remove_metadata().serialize().to_pybytes())
