"""The on-disk spool: order, acks, bound, crash tolerance, growing sequences."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from sysmonstm.transport.spool import Spool

SpoolFactory = Callable[..., Spool]


@pytest.fixture
def open_spool() -> Iterator[SpoolFactory]:
    """Opens spools like ``Spool(...)`` and closes them all after the test."""
    opened: list[Spool] = []

    def factory(directory: Path, **options: Any) -> Spool:
        opened.append(Spool(directory, **options))
        return opened[-1]

    yield factory
    for spool in opened:
        spool.close()


def fill(spool: Spool, count: int, size: int = 100) -> list[int]:
    """Append ``count`` entries whose payload is derived from their sequence."""
    seqs = []
    for _ in range(count):
        seq = spool.next_sequence()
        spool.append(seq, payload(seq, size))
        seqs.append(seq)
    return seqs


def payload(seq: int, size: int = 100) -> bytes:
    return (str(seq).encode() * size)[:size]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_pending_returns_entries_after_a_sequence_in_order(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path)
    seqs = fill(spool, 10)
    assert spool.pending(0) == [(s, payload(s)) for s in seqs]
    assert [s for s, _ in spool.pending(seqs[3], limit=4)] == seqs[4:8]
    assert spool.pending(seqs[-1]) == []
    assert spool.pending_count == 10


def test_count_after_counts_the_live_entries_above_a_sequence(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path)
    seqs = fill(spool, 10)
    assert [spool.count_after(s) for s in (0, seqs[0], seqs[6], seqs[-1])] == [10, 9, 3, 0]
    spool.ack(seqs[4])
    spool.quarantine(seqs[7], "refused")
    assert spool.count_after(0) == len(spool.pending(0)) == 4


def test_sequences_from_next_sequence_strictly_grow(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path)
    seqs = [spool.next_sequence() for _ in range(1000)]
    assert all(b > a for a, b in itertools.pairwise(seqs))


def test_append_refuses_a_sequence_that_does_not_grow(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path)
    spool.append(10, b"x")
    with pytest.raises(ValueError, match="does not grow"):
        spool.append(10, b"y")
    assert spool.pending(0) == [(10, b"x")]


def test_entries_survive_reopening_and_are_read_back_from_disk(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path, segment_bytes=1000)
    seqs = fill(spool, 30)
    spool.close()
    reopened = open_spool(tmp_path, cache_bytes=0)  # no cache: every read goes to the files
    assert reopened.pending(0) == [(s, payload(s)) for s in seqs]


def test_ack_frees_entries_and_deletes_fully_acked_segments(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path, segment_bytes=1000)
    seqs = fill(spool, 40)
    assert len(segment_files(tmp_path)) > 3
    spool.ack(seqs[24])
    assert spool.acked == seqs[24]
    assert [s for s, _ in spool.pending(0)] == seqs[25:]
    assert spool.pending_count == 15
    remaining = segment_files(tmp_path)
    assert int(remaining[0].stem) > seqs[0]  # the oldest segments are gone
    spool.ack(seqs[-1])
    assert spool.pending_count == 0
    (still_open,) = segment_files(tmp_path)  # kept until rolled, to spare a file per batch
    assert spool.size_bytes == still_open.stat().st_size
    spool.close()
    open_spool(tmp_path)
    assert segment_files(tmp_path) == []  # a fully acked segment does not survive a reopen


def test_acked_mark_persists_across_reopening(tmp_path: Path, open_spool: SpoolFactory) -> None:
    spool = open_spool(tmp_path, segment_bytes=100_000)
    seqs = fill(spool, 10)
    spool.ack(seqs[3])
    spool.close()
    reopened = open_spool(tmp_path)
    assert reopened.acked == seqs[3]
    assert [s for s, _ in reopened.pending(0)] == seqs[4:]


def test_over_the_bound_the_oldest_entries_are_dropped_with_a_warning(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path, max_bytes=20_000, segment_bytes=2_000)
    with capture_logs() as logs:
        seqs = fill(spool, 500, size=100)
    assert spool.size_bytes <= 20_000
    assert sum(p.stat().st_size for p in segment_files(tmp_path)) == spool.size_bytes
    kept = [s for s, _ in spool.pending(0)]
    assert kept == seqs[-len(kept) :]  # the newest survive, in order, without gaps
    assert spool.dropped == 500 - len(kept) > 0
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert warnings
    assert sum(e["batches"] for e in warnings) == spool.dropped


def test_a_torn_tail_is_ignored_and_the_spool_stays_usable(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path, segment_bytes=100_000)
    seqs = fill(spool, 5)
    spool.close()
    (last,) = segment_files(tmp_path)
    intact = last.stat().st_size
    with last.open("ab") as f:
        f.write(b"\x40\x00\x00\x00\x01\x02")  # half a header, as a crash mid-append leaves
    with capture_logs() as logs:
        reopened = open_spool(tmp_path)
    assert [s for s, _ in reopened.pending(0)] == seqs
    assert last.stat().st_size == intact
    assert any("torn" in e["event"] for e in logs)
    more = fill(reopened, 3)
    reopened.close()
    assert [s for s, _ in open_spool(tmp_path).pending(0)] == seqs + more


def test_a_corrupt_record_ends_its_segment_without_failing(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path, segment_bytes=100_000)
    seqs = fill(spool, 6)
    spool.close()
    (seg,) = segment_files(tmp_path)
    raw = bytearray(seg.read_bytes())
    record = len(raw) // 6
    raw[record * 3 + 20] ^= 0xFF  # a flipped byte in the fourth record's payload
    seg.write_bytes(bytes(raw))
    assert [s for s, _ in open_spool(tmp_path).pending(0)] == seqs[:3]


def test_sequences_keep_growing_across_restarts_even_if_the_clock_goes_back(
    tmp_path: Path,
    open_spool: SpoolFactory,
) -> None:
    spool = open_spool(tmp_path, clock_us=lambda: 1_000)
    seqs = fill(spool, 3)
    spool.ack(seqs[-1])
    spool.close()
    open_spool(tmp_path).close()  # purges the fully acked segment
    assert segment_files(tmp_path) == []  # only the acked mark remembers the last sequence
    reopened = open_spool(tmp_path, clock_us=lambda: 5)  # a clock that went back
    assert reopened.next_sequence() > seqs[-1]


def test_sequences_keep_growing_when_the_spool_directory_is_lost(
    tmp_path: Path, open_spool: SpoolFactory
) -> None:
    spool = open_spool(tmp_path / "spool")
    last = fill(spool, 3)[-1]
    spool.close()
    shutil.rmtree(tmp_path / "spool")
    assert open_spool(tmp_path / "spool").next_sequence() > last


def test_quarantine_moves_an_entry_aside_for_good(tmp_path: Path, open_spool: SpoolFactory) -> None:
    spool = open_spool(tmp_path)
    seqs = fill(spool, 5)
    path = spool.quarantine(seqs[2], "INVALID_ARGUMENT: bad series")
    assert path == tmp_path / "rejected" / f"{seqs[2]}.bin"
    assert path.read_bytes() == payload(seqs[2])
    assert "bad series" in path.with_suffix(".reason").read_text()
    assert [s for s, _ in spool.pending(0)] == seqs[:2] + seqs[3:]
    assert spool.quarantine(seqs[2], "again") is None
    spool.close()
    assert [s for s, _ in open_spool(tmp_path).pending(0)] == seqs[:2] + seqs[3:]


def test_append_notifies_subscribers(tmp_path: Path, open_spool: SpoolFactory) -> None:
    spool = open_spool(tmp_path)
    calls: list[int] = []
    spool.subscribe(lambda: calls.append(spool.last_sequence))
    seqs = fill(spool, 3)
    assert calls == seqs


def test_sequences_are_consecutive_within_one_run(open_spool: SpoolFactory, tmp_path: Path) -> None:
    """Only the first sequence after opening jumps to the clock; the rest follow one by one."""
    spool = open_spool(tmp_path, clock_us=lambda: 10**15)
    seqs = [spool.next_sequence() for _ in range(100)]
    assert seqs[0] == 10**15
    assert seqs == list(range(seqs[0], seqs[0] + 100))
