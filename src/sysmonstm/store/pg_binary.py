"""PostgreSQL's binary formats built and read with numpy, never a Python object per sample.

Raw frames go to the server as a binary COPY stream whose rows are laid out with one numpy
structured array per group of equally wide frames: ~60 M samples/s to encode, so the COPY
runs at the server's pace (~12 M samples/s here), where asyncpg's ``copy_records_to_table``
(a Python float per value) makes the whole COPY ~3.6 M samples/s. They come back as
``array_send(vals)`` bytes, viewed in place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import cache

import numpy as np

from sysmonstm.errors import BackendError
from sysmonstm.store.model import Float64Array, Int64Array

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, no extension
COPY_TRAILER = b"\xff\xff"
RAW_COLUMNS = ("t", "seq", "source_id", "layout_id", "vals")
FLOAT8_OID = 701
_ARRAY_HEAD = 20  # ndim, has-null flag, element type, then one (length, lower bound)


@cache
def _raw_row(n: int) -> np.dtype[np.void]:
    """One binary COPY row of ``raw`` (columns ``RAW_COLUMNS``) holding ``n`` values."""
    fields: list[tuple[str, str] | tuple[str, list[tuple[str, str]], tuple[int]]] = [
        ("nfields", ">i2"),
        ("t_len", ">i4"),
        ("t", ">i8"),
        ("seq_len", ">i4"),
        ("seq", ">i8"),
        ("source_len", ">i4"),
        ("source_id", ">i4"),
        ("layout_len", ">i4"),
        ("layout_id", ">i4"),
        ("vals_len", ">i4"),
        ("ndim", ">i4"),
        ("has_null", ">i4"),
        ("elem", ">i4"),
    ]
    if n:  # an empty array is written with ndim 0 and no dimension
        fields += [
            ("dim", ">i4"),
            ("lbound", ">i4"),
            ("vals", [("len", ">i4"), ("v", ">f8")], (n,)),
        ]
    return np.dtype(fields)


def raw_rows(
    times: Int64Array,
    seqs: Int64Array,
    source_ids: Int64Array,
    layout_ids: Int64Array,
    values: Float64Array,
) -> bytes:
    """Binary COPY rows (no header) for frames ``values[i]`` at ``times[i]``."""
    n = int(values.shape[1])
    rows = np.empty(len(times), dtype=_raw_row(n))
    rows["nfields"] = len(RAW_COLUMNS)
    rows["t_len"] = 8
    rows["t"] = times
    rows["seq_len"] = 8
    rows["seq"] = seqs
    rows["source_len"] = 4
    rows["source_id"] = source_ids
    rows["layout_len"] = 4
    rows["layout_id"] = layout_ids
    rows["vals_len"] = _ARRAY_HEAD + 12 * n if n else 12
    rows["ndim"] = 1 if n else 0
    rows["has_null"] = 0
    rows["elem"] = FLOAT8_OID
    if n:
        rows["dim"] = n
        rows["lbound"] = 1
        rows["vals"]["len"] = 8
        rows["vals"]["v"] = values
    return rows.tobytes()


async def copy_stream(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    """A whole binary COPY stream around rows ``parts``, for ``copy_to_table(source=...)``
    (which would take a bytes object for a file name)."""
    yield COPY_HEADER
    for part in parts:
        yield part
    yield COPY_TRAILER


def float8_arrays(blobs: Sequence[bytes], n: int) -> Float64Array:
    """Decode ``array_send`` outputs of ``n``-element, null-free ``float8[]``s into a matrix
    (one row per blob)."""
    return np.asarray(arrays(blobs, n, ">f8"), dtype=np.float64)


def arrays(blobs: Sequence[bytes], n: int, elem: str) -> np.ndarray:
    """Decode ``array_send`` outputs of ``n``-element, null-free one-dimensional arrays of
    big-endian ``elem`` (``">f8"``: float8, ``">i4"``: int4) into a native matrix."""
    native = np.dtype(elem).newbyteorder("=")
    if not n or not blobs:
        return np.empty((len(blobs), n), dtype=native)
    size = np.dtype(elem).itemsize
    width = _ARRAY_HEAD + (4 + size) * n
    buf = b"".join(blobs)
    if len(buf) != width * len(blobs):
        raise BackendError(f"stored arrays do not hold {n} values each as their layout says")
    head = np.ndarray((len(blobs), 5), dtype=">i4", buffer=buf, strides=(width, 4))
    if not ((head[:, 0] == 1) & (head[:, 1] == 0) & (head[:, 3] == n)).all():
        raise BackendError("stored arrays are of an unexpected shape or hold NULLs")
    values = np.ndarray(
        (len(blobs), n), dtype=elem, buffer=buf, offset=_ARRAY_HEAD + 4, strides=(width, 4 + size)
    )
    return values.astype(native)


def _array(n: int, elem: str) -> np.dtype[np.void]:
    """One non-empty, null-free one-dimensional array field of a binary COPY row."""
    return np.dtype(
        [
            ("len", ">i4"),
            ("ndim", ">i4"),
            ("has_null", ">i4"),
            ("elem", ">i4"),
            ("dim", ">i4"),
            ("lbound", ">i4"),
            ("vals", [("len", ">i4"), ("v", elem)], (n,)),
        ]
    )


def _fill_array(field: np.ndarray, oid: int, values: np.ndarray) -> None:
    n = values.shape[1]
    size = np.dtype(field.dtype["vals"].base["v"]).itemsize
    field["len"] = _ARRAY_HEAD + (4 + size) * n
    field["ndim"] = 1
    field["has_null"] = 0
    field["elem"] = oid
    field["dim"] = n
    field["lbound"] = 1
    field["vals"]["len"] = size
    field["vals"]["v"] = values


# the 1-minute rollup table's columns (``pg_m1``): a series' hour, each stat an array of its
# 60 minutes
M1_COLUMNS = ("t", "series_id", "min", "max", "sum", "last", "count")
M1_FLOATS = ("min", "max", "sum", "last")
M1_SLOTS = 60
INT4_OID = 23
_M1_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("t_len", ">i4"),
        ("t", ">i8"),
        ("series_len", ">i4"),
        ("series_id", ">i4"),
        *((name, _array(M1_SLOTS, ">f8")) for name in M1_FLOATS),
        ("count", _array(M1_SLOTS, ">i4")),
    ]
)


def m1_rows(hours: Int64Array, series_ids: Int64Array, stats: dict[str, np.ndarray]) -> bytes:
    """Binary COPY rows (no header) of ``m1`` (columns ``M1_COLUMNS``): row ``i`` holds
    ``stats[name][i]`` (a ``(rows, M1_SLOTS)`` matrix per name of ``M1_FLOATS`` and
    ``count``)."""
    rows = np.empty(len(hours), dtype=_M1_ROW)
    rows["nfields"] = len(M1_COLUMNS)
    rows["t_len"] = 8
    rows["t"] = hours
    rows["series_len"] = 4
    rows["series_id"] = series_ids
    for name in M1_FLOATS:
        _fill_array(rows[name], FLOAT8_OID, stats[name])
    _fill_array(rows["count"], INT4_OID, stats["count"])
    return rows.tobytes()


# one rollup row of a binary COPY out of (series_id, t, min, max, sum, count, last)
ROLLUP_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("series_len", ">i4"),
        ("series_id", ">i4"),
        ("t_len", ">i4"),
        ("t", ">i8"),
        ("min_len", ">i4"),
        ("min", ">f8"),
        ("max_len", ">i4"),
        ("max", ">f8"),
        ("sum_len", ">i4"),
        ("sum", ">f8"),
        ("count_len", ">i4"),
        ("count", ">i4"),
        ("last_len", ">i4"),
        ("last", ">f8"),
    ]
)


def fixed_rows(stream: bytes, dtype: np.dtype[np.void]) -> np.ndarray:
    """The rows of a binary COPY stream whose rows all have ``dtype``'s fixed layout."""
    if not stream.startswith(COPY_HEADER) or not stream.endswith(COPY_TRAILER):
        raise BackendError("unexpected binary COPY stream from the server")
    body = stream[len(COPY_HEADER) : -len(COPY_TRAILER)]
    if len(body) % dtype.itemsize:
        raise BackendError("binary COPY rows are not of the expected width")
    return np.frombuffer(body, dtype=dtype)
