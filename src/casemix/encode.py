"""Encoding: string codes → int32 ids against a scheme's code universe.

The batch grouper never touches a string.  Every code a scheme knows (its
``diagnoses.csv`` / ``procedures.csv`` dictionaries and every code of
``lists.csv``, ``cc.csv``, ``exclusions.csv`` and ``or_procedures.csv``)
gets a dense id; a code the scheme does not know becomes ``-1``.

Two lookups give the same ids (a test checks they agree):

- polars' own, a cast to an ``Enum`` whose categories are the universe
  (the fastest polars route measured here: on 20M codes against CHS-DRG
  1.1's 47k, about 23 M codes/s, against 13 M/s for a join and 11 M/s for
  ``replace_strict``, on the shared 2-core machine);
- the default, a numba hash lookup straight on the Arrow string views
  polars exports without copying (``CompatLevel.newest()``): a code of at
  most 12 bytes lives inside its 16-byte view, so one lookup is two 64-bit
  loads, a multiply-shift hash and a probe in a table of 32-byte slots.
  On 6M secondary diagnoses: 78 M codes/s against 34 M/s for the ``Enum``
  cast (wall, 2 threads), 20% less CPU; it also runs in the kernel's
  thread pool rather than competing with polars'.

Neither has a Python loop per row.

Ragged code lists (secondary diagnoses, other procedures) become CSR
arrays: ``offsets`` (int64, ``n + 1``) and ``values`` (int32), the codes of
row ``i`` being ``values[offsets[i]:offsets[i + 1]]``.  A principal code is
``-2`` when absent (null or empty text): the reference grouper treats an
absent principal as "no code", while an unknown principal still counts as
a diagnosis (``diagnoses`` validity check).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import polars as pl

from casemix.scheme.model import Scheme
from casemix.scheme.rules import FIELDS

__all__ = [
    "ABSENT",
    "UNKNOWN",
    "CHECK_FIELDS",
    "CodeIndex",
    "EncodedCases",
    "code_index",
    "encode_codes",
    "encode_codes_polars",
    "encode_principal",
    "encode_list",
    "encode_joined",
    "encode_cases",
    "grey_ids",
]

#: id of a code the scheme does not know
UNKNOWN = -1
#: id of an absent principal code (null or empty)
ABSENT = -2
#: fields a validity check may require, in bit order of ``EncodedCases.malformed``
CHECK_FIELDS = FIELDS + ("diagnoses", "procedures")


@dataclass(frozen=True, eq=False)
class CodeIndex:
    """The code universe of a scheme and its polars ``Enum`` lookup.

    Attributes
    ----------
    codes
        Every code of the scheme, sorted; the id of a code is its position.
    dtype
        ``pl.Enum(codes)``: casting a String column to it is the lookup.
    is_diagnosis, is_procedure
        Per id: whether the code is in ``diagnoses.csv`` / ``procedures.csv``.
    """

    codes: pl.Series
    dtype: pl.Enum
    is_diagnosis: np.ndarray
    is_procedure: np.ndarray
    #: open-addressing hash table of the codes for the numba lookup (see ``_hash_table``)
    table: tuple = ()

    def __len__(self) -> int:
        return len(self.codes)

    def id_of(self, code: str) -> int:
        """Id of one code (``-1`` when unknown); for tests and tables, not rows."""
        pos = int(np.searchsorted(self.codes.to_numpy(), code)) if len(self.codes) else 0
        return pos if pos < len(self.codes) and self.codes[pos] == code else UNKNOWN


_INDEX_CACHE: weakref.WeakKeyDictionary[Scheme, CodeIndex] = weakref.WeakKeyDictionary()


def code_index(scheme: Scheme) -> CodeIndex:
    """The code universe of ``scheme`` (built once per Scheme object, then cached)."""
    cached = _INDEX_CACHE.get(scheme)
    if cached is not None:
        return cached
    universe = set(scheme.diagnoses) | set(scheme.procedures) | set(scheme.cc)
    universe |= set(scheme.exclusions) | set(scheme.or_procedures)
    for members in scheme.lists.values():
        universe |= members
    codes = sorted(universe)
    series = pl.Series("code", codes, dtype=pl.String)
    is_dx = np.fromiter((c in scheme.diagnoses for c in codes), dtype=bool, count=len(codes))
    is_px = np.fromiter((c in scheme.procedures for c in codes), dtype=bool, count=len(codes))
    index = CodeIndex(series, pl.Enum(codes), is_dx, is_px, _hash_table(codes))
    _INDEX_CACHE[scheme] = index
    return index


def grey_ids(scheme: Scheme) -> dict[str, np.ndarray]:
    """Per grey target (``"pdx"``, ``"pproc"``), whether each code id is grey.

    Each array has one extra ``False`` at the end, so that an id ``-1``
    (unknown) or ``-2`` (absent) indexes a ``False``.  Empty when the scheme
    has no ``[grey]`` lists.
    """
    cached = _GREY_CACHE.get(scheme)
    if cached is not None:
        return cached
    codes = code_index(scheme).codes
    out = {}
    for target, name in scheme.grey.items():
        members = pl.Series(sorted(scheme.lists[name]), dtype=pl.String)
        flags = np.append(codes.is_in(members.implode()).to_numpy(), [False, False])
        flags.flags.writeable = False
        out[target] = flags
    _GREY_CACHE[scheme] = out
    return out


_GREY_CACHE: weakref.WeakKeyDictionary[Scheme, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


_M1, _M2 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
_MASK64 = (1 << 64) - 1


def _fnv(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & _MASK64
    return h


def _key(code: str) -> tuple[int, int]:
    """The two 64-bit words the kernel derives from the Arrow view of ``code``."""
    raw = code.encode("utf-8")
    n = len(raw)
    if n <= 12:
        inline = raw.ljust(12, b"\0")
        return (n | int.from_bytes(inline[:4], "little") << 32), int.from_bytes(inline[4:], "little")
    return (n | int.from_bytes(raw[:4], "little") << 32), _fnv(raw)


#: bits 8..31 of a slot's first word hold the code id (the key's length needs the low 8)
_ID_SHIFT, _ID_BITS = 8, 24


def _hash_table(codes: list[str]) -> tuple:
    """(slots, shift, long_data, long_off): the hash table ``encode_kernel.probe`` probes.

    One 16-byte slot per entry: the key's two words, the code id stored in
    bits 8..31 of the first (a key keeps its length, at most 255 bytes, in
    the low 8 bits and zeros up to bit 31).  At most 3/4 full, so CHS-DRG
    1.1's 47k codes take 65,536 slots, 1 MB: the table stays in a core's
    L2 cache, where the lookups of millions of codes a second are decided
    (a 32-byte slot at half load was 4 MB).  An empty slot is all ones,
    which no UTF-8 key is.

    Fuller than it could be, and faster for it: at 0.72 full a lookup of
    the bench's diagnoses probes 1.96 more slots on average, in a table of
    twice the slots (0.36 full) 0.41, yet splitting and looking up 2M cases'
    ``|``-strings took 1.45 CPU-s against 1.00 (best of 6 alternating runs,
    session 8, load 10-12): the extra probes mostly read the same 64-byte
    cache line, and the 2 MB table no longer fits a core's 1 MiB of L2
    (this machine's AMD EPYC), where most of the 1 MB one stays.
    """
    if len(codes) >= 1 << _ID_BITS or any(len(c.encode("utf-8")) > 255 for c in codes):
        raise ValueError("a scheme of more than 16M codes, or a code longer than 255 bytes")
    bits = max(4, (4 * max(1, len(codes)) // 3).bit_length())  # load factor <= 3/4
    size, shift = 1 << bits, 64 - bits
    slots = np.full((size, 2), _MASK64, dtype=np.uint64)
    used = np.zeros(size, dtype=bool)
    long_off = np.zeros(len(codes) + 1, dtype=np.int64)
    chunks = []
    for i, code in enumerate(codes):
        a, b = _key(code)
        slot = (((a * _M1) ^ (b * _M2)) & _MASK64) >> shift
        while used[slot]:
            slot = (slot + 1) & (size - 1)
        slots[slot, 0], slots[slot, 1], used[slot] = a | (i << _ID_SHIFT), b, True
        raw = code.encode("utf-8")
        if len(raw) > 12:
            chunks.append(raw)
        long_off[i + 1] = long_off[i] + (len(raw) if len(raw) > 12 else 0)
    long_data = np.frombuffer(b"".join(chunks), dtype=np.uint8) if chunks else np.zeros(1, np.uint8)
    for arr in (slots, long_off):
        arr.flags.writeable = False
    return slots, shift, long_data, long_off


def _views(arr) -> tuple:
    """The buffers of a pyarrow string_view array as numpy arrays for the kernel."""
    bufs = arr.buffers()
    n_total = arr.offset + len(arr)
    views = np.frombuffer(bufs[1], dtype=np.uint64, count=2 * n_total).reshape(-1, 2)
    valid = (
        np.frombuffer(bufs[0], dtype=np.uint8)
        if bufs[0] is not None and arr.null_count
        else np.zeros(1, dtype=np.uint8)
    )
    data, data_base = _data_span([b for b in bufs[2:] if b is not None])
    return views, arr.offset, valid, bool(bufs[0] is not None and arr.null_count), data, data_base


def _data_span(bufs: list) -> tuple[np.ndarray, np.ndarray]:
    """The data buffers of a string view array as one uint8 array and the start of each in it.

    polars keeps the text of a long column in dozens of buffers; joining
    them copied every byte of text (7% of grouping a ``|``-string column).
    Instead the array spans the address range of all the buffers without a
    copy: the kernels read only inside the buffers, at ``start + offset``
    of a view, never the gaps between them.  The array keeps the buffers
    alive (``pyarrow.foreign_buffer``'s ``base``).
    """
    if not bufs:
        return np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64)
    if len(bufs) == 1:
        return np.frombuffer(bufs[0], dtype=np.uint8), np.zeros(1, dtype=np.int64)
    import pyarrow as pa

    starts = np.array([b.address for b in bufs], dtype=np.int64)
    lo = int(starts.min())
    hi = max(b.address + b.size for b in bufs)
    span = np.frombuffer(pa.foreign_buffer(lo, hi - lo, base=bufs), dtype=np.uint8)
    return span, starts - lo


def _as_views(codes: pl.Series):
    import pyarrow as pa

    arr = codes.cast(pl.String).rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string_view():
        arr = arr.cast(pa.string_view())
    return arr


def _lookup_args(index: CodeIndex) -> tuple:
    return index.table


def encode_codes_polars(codes: pl.Series, index: CodeIndex) -> np.ndarray:
    """Ids of a String series by polars' ``Enum`` cast; null and unknown codes become ``-1``."""
    ids = codes.cast(pl.String).cast(index.dtype, strict=False).to_physical()
    return ids.cast(pl.Int32).fill_null(UNKNOWN).to_numpy()


def _encode_views(codes: pl.Series, index: CodeIndex, absent_empty: bool) -> np.ndarray:
    from casemix.encode_kernel import lookup_views

    out = np.empty(len(codes), dtype=np.int32)
    if len(codes):
        # mypy cannot count the arguments the two untyped tuples unpack to
        lookup_views(*_views(_as_views(codes)), absent_empty, *_lookup_args(index), out)  # type: ignore[call-arg]
    return out


def encode_codes(codes: pl.Series, index: CodeIndex) -> np.ndarray:
    """Ids of a String series; null and unknown codes become ``-1``."""
    return _encode_views(codes, index, False)


def encode_principal(codes: pl.Series, index: CodeIndex) -> np.ndarray:
    """Ids of a principal-code column: ``-2`` when null or empty, ``-1`` when unknown."""
    return _encode_views(codes, index, True)


def encode_joined(
    texts: pl.Series, index: CodeIndex, first_apart: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids of ``|``-joined code texts (``"I10.x00|E11.900"``), split and looked up in one pass.

    Parameters
    ----------
    texts
        A String series, one text per row; a null or empty text has no codes.
    index
        The scheme's code universe.
    first_apart
        Whether the first code of each text is the principal one (a
        combined column) rather than the first of the list.

    Returns
    -------
    first, offsets, values, flags
        The id of each row's first code (``-2`` when blank or absent; all
        ``-2`` unless ``first_apart``), the other codes as CSR, and per row
        a uint8 of flags: bit 1 when its text has a non-ASCII byte, bit 2
        when a code not found may be read otherwise by intake (white space
        inside, a trailing ``+``; see :mod:`casemix.split_kernel`), bit 4
        when it has a ``|``.  A
        blank code is dropped; white space around a code and the letter
        case of a plain code are read as intake reads them, so a row with
        no flag has intake's ids, an unknown code being ``-1``.  Flagged
        rows must be read by intake.
    """
    from casemix.split_kernel import split_joined

    if not len(texts):
        return (
            np.zeros(0, dtype=np.int32),
            np.zeros(1, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.uint8),
        )
    # mypy cannot count the arguments the two untyped tuples unpack to
    return split_joined(*_views(_as_views(texts)), first_apart, *_lookup_args(index))  # type: ignore[call-arg]


def encode_list(lists: pl.Series, index: CodeIndex) -> tuple[np.ndarray, np.ndarray]:
    """CSR form of a List(String) column: ``(offsets int64[n + 1], values int32)``.

    A null list is an empty one; a null or unknown element is kept as ``-1``
    (it is still a code of the case, e.g. for the ``diagnoses`` check).
    """
    import pyarrow as pa

    from casemix.encode_kernel import lookup_view_lists

    n = len(lists)
    arr = lists.cast(pl.List(pl.String)).rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    # the offsets are read from their buffer and the null mask from polars: pyarrow's
    # to_numpy imports pandas (0.3-0.5 CPU-s, once per process)
    offs = arr.offsets
    width = np.int64 if pa.types.is_int64(offs.type) else np.int32
    src = np.frombuffer(offs.buffers()[1], dtype=width)[offs.offset : offs.offset + len(offs)]
    src = src.astype(np.int64, copy=False)
    lengths = np.diff(src)
    if arr.null_count:
        lengths = np.where(lists.is_null().to_numpy(), 0, lengths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.empty(int(offsets[-1]), dtype=np.int32)
    if len(values):
        child = arr.values
        if child.type != pa.string_view():
            child = child.cast(pa.string_view())
        # mypy cannot count the arguments the two untyped tuples unpack to
        lookup_view_lists(src[:-1], offsets, *_views(child), *_lookup_args(index), values)  # type: ignore[call-arg]
    return offsets, values


@dataclass(frozen=True, eq=False)
class EncodedCases:
    """A canonical case frame as arrays the kernel reads.

    ``fields[k]`` is field ``FIELDS[k]`` (NaN where null) and ``present[k]``
    whether it is non-null, so a genuine NaN keeps its own comparison
    semantics; bit ``k`` of ``malformed`` says field ``CHECK_FIELDS[k]`` is
    listed in the row's ``malformed`` column.
    """

    n: int
    pdx: np.ndarray
    sdx_off: np.ndarray
    sdx_val: np.ndarray
    pproc: np.ndarray
    oproc_off: np.ndarray
    oproc_val: np.ndarray
    fields: np.ndarray
    present: np.ndarray
    malformed: np.ndarray

    def read_only(self) -> EncodedCases:
        """The same arrays, all marked read-only (returns ``self``).

        polars hands out read-only views or fresh copies depending on nulls;
        numba compiles one kernel per (read-only, writable) mix of arguments,
        so every encoder marks all of them read-only.
        """
        for arr in (
            self.pdx,
            self.sdx_off,
            self.sdx_val,
            self.pproc,
            self.oproc_off,
            self.oproc_val,
            self.fields,
            self.present,
            self.malformed,
        ):
            arr.flags.writeable = False
        return self


def _malformed_bits(canonical: pl.DataFrame, wanted: tuple[str, ...]) -> np.ndarray:
    n = canonical.height
    if "malformed" not in canonical.columns or not wanted:
        return np.zeros(n, dtype=np.uint8)
    col = canonical["malformed"]
    if int(col.list.len().fill_null(0).sum() or 0) == 0:
        return np.zeros(n, dtype=np.uint8)
    bits = canonical.select(
        pl.sum_horizontal(
            [
                pl.col("malformed").list.contains(pl.lit(name)).fill_null(False).cast(pl.UInt8)
                * (1 << CHECK_FIELDS.index(name))
                for name in wanted
            ]
        ).cast(pl.UInt8)
    ).to_series()
    return bits.to_numpy()


def encode_cases(
    canonical: pl.DataFrame, scheme: Scheme, malformed_fields: tuple[str, ...] = CHECK_FIELDS
) -> EncodedCases:
    """Encode a canonical case frame (``docs/architecture.md``) for the kernel.

    Parameters
    ----------
    canonical
        Needs ``pdx``, ``sdx``, ``pproc``, ``oproc`` and the numeric fields
        of ``casemix.scheme.rules.FIELDS``; ``malformed`` is optional.
    scheme
        The scheme whose code universe gives the ids.
    malformed_fields
        Fields whose presence in ``malformed`` matters (the others are not
        looked up).
    """
    index = code_index(scheme)
    n = canonical.height
    fields = np.empty((len(FIELDS), n), dtype=np.float64)
    present = np.empty((len(FIELDS), n), dtype=np.uint8)
    for k, name in enumerate(FIELDS):
        s = canonical[name].cast(pl.Float64)
        fields[k] = s.to_numpy()
        present[k] = s.is_not_null().to_numpy()
    sdx_off, sdx_val = encode_list(canonical["sdx"], index)
    oproc_off, oproc_val = encode_list(canonical["oproc"], index)
    enc = EncodedCases(
        n=n,
        pdx=encode_principal(canonical["pdx"], index),
        sdx_off=sdx_off,
        sdx_val=sdx_val,
        pproc=encode_principal(canonical["pproc"], index),
        oproc_off=oproc_off,
        oproc_val=oproc_val,
        fields=fields,
        present=present,
        malformed=_malformed_bits(canonical, tuple(malformed_fields)),
    )
    return enc.read_only()
