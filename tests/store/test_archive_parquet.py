"""The Parquet format of the archive: content checksums, encodings chosen by measurement,
parts cut at source boundaries, and read-back checks that catch any difference."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from sysmonstm.store.archive import ArchiveCorruptError, Manifest, Part
from sysmonstm.store.archive_parquet import (
    ContentHash,
    check_part,
    choose_encodings,
    content_checksum,
    file_sha256,
    source_span,
    sources_of,
    split_parts,
    write_part,
)
from sysmonstm.store.archive_schema import RAW_SCHEMA
from sysmonstm.store.model import Tier


def long_table(values: np.ndarray, sources: int = 2, series: int = 5) -> pa.Table:
    """Rows sorted like an export: ``values`` spread over sources x series x times."""
    per = len(values) // (sources * series)
    src = np.repeat([f"h-{i}" for i in range(sources)], series * per)
    ser = np.tile(np.repeat([f"s.{j}" for j in range(series)], per), sources)
    t = np.tile(1_780_272_000_000 + np.arange(per, dtype=np.int64) * 1000, sources * series)
    n = len(t)
    return pa.table(
        {
            "domain": np.full(n, "metrics", dtype=object),
            "source": src.astype(object),
            "series": ser.astype(object),
            "t": t,
            "value": values[:n],
        },
        schema=RAW_SCHEMA,
    )


def test_the_content_checksum_ignores_chunking_and_sees_one_flipped_bit() -> None:
    table = long_table(np.random.default_rng(0).normal(size=10_000))
    whole = content_checksum(table)
    chunked = ContentHash(RAW_SCHEMA)
    for batch in table.to_batches(max_chunksize=777):
        chunked.update(batch)
    assert chunked.hexdigest() == whole
    values = table.column("value").to_numpy().copy()
    values.view(np.uint64)[1234] ^= 1
    flipped = table.set_column(4, RAW_SCHEMA.field("value"), pa.array(values))
    assert content_checksum(flipped) != whole
    renamed = table.set_column(2, RAW_SCHEMA.field("series"), pa.array(["x"] * len(table)))
    assert content_checksum(renamed) != whole


def test_negative_zero_and_zero_are_different_content() -> None:
    zeros = long_table(np.zeros(100))
    negative = long_table(np.full(100, -0.0))
    assert content_checksum(zeros) != content_checksum(negative)


def test_rounded_values_get_a_dictionary_and_random_walks_byte_stream_split() -> None:
    rng = np.random.default_rng(1)
    walk = np.abs(1e4 + np.cumsum(rng.normal(0, 1, 400_000)))
    assert choose_encodings(long_table(walk)) == {"value": "BYTE_STREAM_SPLIT"}
    assert choose_encodings(long_table(np.round(walk % 100, 2))) == {"value": "DICTIONARY"}


def test_parts_are_cut_only_at_source_boundaries() -> None:
    table = long_table(np.arange(3000.0), sources=3, series=2)  # 1000 rows per source
    parts = split_parts(table, part_rows=600)
    assert [p.num_rows for p in parts] == [1000, 1000, 1000]
    assert [source_span(p) for p in parts] == [
        (("metrics", f"h-{i}"), ("metrics", f"h-{i}")) for i in range(3)
    ]
    assert split_parts(table, part_rows=1500)[0].num_rows == 2000
    assert sources_of(table) == (("metrics", "h-0"), ("metrics", "h-1"), ("metrics", "h-2"))


def _written(tmp_path: Path, table: pa.Table) -> tuple[Path, Part]:
    path = tmp_path / "p.parquet"
    sha, size = write_part(table, path, {"value": "BYTE_STREAM_SPLIT"})
    first, last = source_span(table)
    return path, Part("raw/x/p", table.num_rows, size, sha, content_checksum(table), first, last)


def test_a_written_part_checks_out_and_feeds_the_partition_hash(tmp_path: Path) -> None:
    table = long_table(np.random.default_rng(2).normal(size=300_000))
    path, part = _written(tmp_path, table)
    whole = ContentHash(RAW_SCHEMA)
    check_part(path, part, RAW_SCHEMA, whole)
    assert whole.hexdigest() == content_checksum(table)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("bytes", "bytes stored"),
        ("sha256", "sha256"),
        ("rows", "rows read back"),
        ("checksum", "content differs"),
    ],
)
def test_any_difference_from_the_part_record_is_corruption(
    tmp_path: Path, field: str, message: str
) -> None:
    path, part = _written(tmp_path, long_table(np.arange(1000.0)))
    value = getattr(part, field)
    changed = value + 1 if isinstance(value, int) else "0" * len(value)
    with pytest.raises(ArchiveCorruptError, match=message):
        check_part(path, msgspec.structs.replace(part, **{field: changed}), RAW_SCHEMA)


def test_a_damaged_file_is_caught_before_it_is_parsed(tmp_path: Path) -> None:
    path, part = _written(tmp_path, long_table(np.arange(1000.0)))
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    assert file_sha256(path) != part.sha256
    with pytest.raises(ArchiveCorruptError, match="sha256"):
        check_part(path, part, RAW_SCHEMA)


def test_a_manifest_whose_name_and_period_disagree_is_refused() -> None:
    good = Manifest(
        name="raw_20260601",
        tier=Tier.RAW,
        start_ms=1_780_272_000_000,
        end_ms=1_780_358_400_000,
        rows=0,
        checksum="sha256:x",
        bytes=0,
        min_t=None,
        max_t=None,
        sources=(),
        parts=(),
        encodings={},
        archived_ms=0,
    )
    assert Manifest.from_json(good.to_json()) == good
    bad = good.to_json().replace(b"1780358400000", b"1780358400001")
    with pytest.raises(ArchiveCorruptError, match="inconsistent"):
        Manifest.from_json(bad)
    with pytest.raises(ArchiveCorruptError, match="not a manifest"):
        Manifest.from_json(b"{}")
