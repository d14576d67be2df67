"""How an archived partition is written as Parquet, and how its content is checksummed.

Encodings, per column, chosen for bytes per sample (see docs/storage.md for the figures):

- ``domain``, ``source``, ``series``: dictionary (RLE of long sorted runs: ~0 bytes a row);
- ``t``, ``count``: DELTA_BINARY_PACKED (a sorted series' times are constant steps);
- float columns (``value``, ``min`` ...): measured per partition on a sample of row groups,
  whichever of dictionary (wins on rounded or repetitive values), BYTE_STREAM_SPLIT (wins on
  full-precision values) and PLAIN writes it smaller;
- zstd on every column; statistics only on the key columns and ``t``, for row-group pruning.

A partition is cut into parts at source boundaries once a part holds ``PART_ROWS`` rows,
so a query reads one part's footer and a row group or two, however large the fleet.

``ContentHash`` is a checksum of the decoded content (column names, every string's UTF-8
bytes and length, every number's little-endian bit pattern), independent of encoding and
chunking, so reading a part back and hashing it proves the values round-trip bit for bit.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sysmonstm.store.archive import ArchiveCorruptError, Part

ROW_GROUP_ROWS = 128 * 1024
PART_ROWS = 64 * ROW_GROUP_ROWS
KEY_COLUMNS = ("domain", "source", "series")
_STATS = [*KEY_COLUMNS, "t"]
_DELTA = ("t", "count")
_FLOAT_CHOICES = ("DICTIONARY", "BYTE_STREAM_SPLIT", "PLAIN")
_PROBE_GROUPS = 4
_READ_CHUNK = 1 << 20
ZSTD_LEVEL = 3


class ContentHash:
    """SHA-256 over a table's content, fed in any number of chunks (see the module doc)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self._h: list[list[Any]] = [
            [hashlib.sha256(), hashlib.sha256()]
            if pa.types.is_string(f.type)
            else [hashlib.sha256()]
            for f in schema
        ]

    def update(self, data: pa.Table | pa.RecordBatch) -> None:
        if not data.schema.equals(self.schema):
            raise ArchiveCorruptError(f"schema {data.schema} is not {self.schema}")
        self.rows += data.num_rows
        for i, name in enumerate(self.schema.names):
            col = data.column(name)
            chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
            for chunk in chunks:
                self._feed(self._h[i], chunk)

    @staticmethod
    def _feed(hashers: list[Any], arr: pa.Array[Any]) -> None:
        if len(arr) == 0:
            return
        if arr.null_count:
            raise ArchiveCorruptError("archived columns hold no nulls")
        if pa.types.is_string(arr.type):
            _, offsets_buf, data_buf = arr.buffers()
            assert offsets_buf is not None
            offsets = np.frombuffer(
                memoryview(offsets_buf), dtype="<i4", count=len(arr) + 1, offset=arr.offset * 4
            )
            hashers[0].update(np.diff(offsets).astype("<i8").tobytes())
            if data_buf is not None:
                hashers[1].update(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])
            return
        dtype = "<f8" if pa.types.is_floating(arr.type) else "<i8"
        hashers[0].update(np.ascontiguousarray(arr.to_numpy(), dtype=dtype).tobytes())

    def hexdigest(self) -> str:
        total = hashlib.sha256(f"rows={self.rows}\n".encode())
        for name, hashers in zip(self.schema.names, self._h, strict=True):
            total.update(name.encode() + b"\n")
            for h in hashers:
                total.update(h.digest())
        return "sha256:" + total.hexdigest()


def content_checksum(table: pa.Table) -> str:
    h = ContentHash(table.schema)
    h.update(table)
    return h.hexdigest()


def _write(table: pa.Table, where: Path | io.BytesIO, encodings: dict[str, str]) -> None:
    names = set(table.schema.names)
    dictionary = [c for c in KEY_COLUMNS if c in names]
    dictionary += [c for c, e in encodings.items() if e == "DICTIONARY" and c in names]
    column_encoding = {c: "DELTA_BINARY_PACKED" for c in _DELTA if c in names}
    column_encoding.update({c: e for c, e in encodings.items() if e != "DICTIONARY" and c in names})
    pq.write_table(
        table,
        where,
        row_group_size=ROW_GROUP_ROWS,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=dictionary,  # type: ignore[arg-type]  # pyarrow takes column names too
        column_encoding=column_encoding,
        write_statistics=[c for c in _STATS if c in names],
    )


def _probe(table: pa.Table) -> pa.Table:
    """Up to ``_PROBE_GROUPS`` row groups' worth of rows, spread over the table."""
    if table.num_rows <= _PROBE_GROUPS * ROW_GROUP_ROWS:
        return table
    step = table.num_rows // _PROBE_GROUPS
    return pa.concat_tables(table.slice(i * step, ROW_GROUP_ROWS) for i in range(_PROBE_GROUPS))


def choose_encodings(table: pa.Table) -> dict[str, str]:
    """Per float column, the encoding that writes a sample of ``table`` smallest."""
    sample = _probe(table)
    chosen: dict[str, str] = {}
    for field in table.schema:
        if not pa.types.is_floating(field.type):
            continue
        column = sample.select([field.name])
        sizes = {}
        for choice in _FLOAT_CHOICES:
            buf = io.BytesIO()
            _write(column, buf, {field.name: choice})
            sizes[choice] = buf.tell()
        chosen[field.name] = min(_FLOAT_CHOICES, key=lambda c: sizes[c])
    return chosen


def split_parts(table: pa.Table, part_rows: int = PART_ROWS) -> list[pa.Table]:
    """``table`` (sorted by domain, source, ...) cut at source boundaries into parts of at
    least ``part_rows`` rows (the last may be smaller; one source is never split)."""
    if table.num_rows <= part_rows:
        return [table]
    codes = [
        np.asarray(table.column(c).combine_chunks().dictionary_encode().indices, dtype=np.int64)
        for c in ("domain", "source")
    ]
    changed = (codes[0][1:] != codes[0][:-1]) | (codes[1][1:] != codes[1][:-1])
    cuts = [0]
    for boundary in (np.flatnonzero(changed) + 1).tolist():
        if boundary - cuts[-1] >= part_rows:
            cuts.append(boundary)
    cuts.append(table.num_rows)
    return [table.slice(a, b - a) for a, b in itertools.pairwise(cuts)]


def write_part(table: pa.Table, path: Path, encodings: dict[str, str]) -> tuple[str, int]:
    """Write one part; return the sha256 (hex) and the size of the file written."""
    _write(table, path, encodings)
    return file_sha256(path), path.stat().st_size


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def source_span(table: pa.Table) -> tuple[tuple[str, str], tuple[str, str]]:
    """The first and last ``(domain, source)`` of a non-empty sorted table."""
    d, s = table.column("domain"), table.column("source")
    n = table.num_rows - 1
    return (str(d[0]), str(s[0])), (str(d[n]), str(s[n]))


def sources_of(table: pa.Table) -> tuple[tuple[str, str], ...]:
    pairs = table.select(["domain", "source"]).group_by(["domain", "source"]).aggregate([])
    domains = [str(d) for d in pairs.column("domain").to_pylist()]
    sources = [str(s) for s in pairs.column("source").to_pylist()]
    return tuple(sorted(zip(domains, sources, strict=True)))


def check_part(
    path: Path, part: Part, schema: pa.Schema, partition: ContentHash | None = None
) -> None:
    """Check a part read back from storage against its ``Part`` record: size, sha256, row
    count and content checksum. Row groups stream into ``partition`` (the partition-level
    hash) as well. ``ArchiveCorruptError`` on the first difference."""
    size = path.stat().st_size
    if size != part.bytes:
        raise ArchiveCorruptError(f"{part.key}: {size} bytes stored, {part.bytes} written")
    if file_sha256(path) != part.sha256:
        raise ArchiveCorruptError(f"{part.key}: sha256 differs from what was written")
    mine = ContentHash(schema)
    try:
        with pq.ParquetFile(path) as pf:
            if not pf.schema_arrow.equals(schema):
                raise ArchiveCorruptError(f"{part.key}: schema {pf.schema_arrow} is not {schema}")
            for i in range(pf.num_row_groups):
                group = pf.read_row_group(i)
                mine.update(group)
                if partition is not None:
                    partition.update(group)
    except (pa.ArrowException, OSError) as exc:
        raise ArchiveCorruptError(f"{part.key}: unreadable Parquet: {exc}") from exc
    if mine.rows != part.rows:
        raise ArchiveCorruptError(f"{part.key}: {mine.rows} rows read back, {part.rows} written")
    if mine.hexdigest() != part.checksum:
        raise ArchiveCorruptError(f"{part.key}: content differs from what was written")


def read_whole(paths: Iterable[Path], schema: pa.Schema) -> pa.Table:
    """Every row of the parts at ``paths``, in order, as one table of ``schema``."""
    tables = [pq.read_table(p, schema=schema) for p in paths]
    return pa.concat_tables(tables) if tables else schema.empty_table()
