"""A bounded on-disk spool of serialized batches, keyed by a growing sequence number.

The sender side of every stream keeps what it produced here until the aggregator acks it,
so a restart of either end loses nothing. The spool knows nothing of the domain: an entry is
``(sequence, bytes)``.

Layout of ``directory``:

- ``<first-seq>.seg``: append-only segments of records framed as
  ``u32 length | u32 crc32(seq + data) | u64 seq | data`` (little endian). A record that is
  short or fails its CRC (a torn tail after a crash) ends its segment: it is cut off with a
  warning, never fatal.
- ``acked``: the acked mark, the highest sequence the receiver has durably stored.
- ``rejected/<seq>.bin`` and ``<seq>.reason``: batches the receiver refused (quarantine).

Durability: every append is flushed to the OS (a crash of the process loses nothing); a
segment is fsynced when it is rolled and on ``close``; the acked mark is written atomically and
fsynced, at most once per ``mark_every_s`` (1 s) and always before fully acked segments are
deleted. The open segment is kept until it is rolled, even when fully acked. Losing
the newest records or an ack to a power cut means re-sending batches the receiver already
has, which it drops. Sequences need no file of their own: the newest record or the acked
mark holds the last one, and the first ``next_sequence`` after opening is also floored by
the wall clock in microseconds, so they keep growing when the directory itself is lost
(unless the clock went back too). Within one run they are consecutive, so a receiver (or a
test) can tell a missing batch from a skipped one.

Not thread-safe: use a spool from one thread (the event loop). Appends are small buffered
writes, cheap enough to call from a coroutine.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<IIQ")
_SEQ = struct.Struct("<Q")
MB = 1024 * 1024


def wall_clock_us() -> int:
    """Microseconds since the Unix epoch: the floor of every new sequence."""
    return time.time_ns() // 1000


def _crc(seq: int, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(_SEQ.pack(seq)))


@dataclass
class _Segment:
    first: int
    path: Path
    last: int = 0
    size: int = 0


class Spool:
    """Entries ``(seq, data)`` kept on disk in sequence order until acked, within a bound.

    Over ``max_bytes`` the oldest segments are dropped, acked or not (bounded beats
    unbounded); ``dropped`` counts the un-acked entries lost that way. The newest
    ``cache_bytes`` of entries are also kept in memory so a sender does not re-read what was
    just written.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        max_bytes: int = 100 * MB,
        segment_bytes: int | None = None,
        cache_bytes: int | None = None,
        clock_us: Callable[[], int] = wall_clock_us,
        mark_every_s: float = 1.0,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(max(max_bytes // 16, 4096), 8 * MB)
        self._cache_limit = cache_bytes if cache_bytes is not None else min(max_bytes, 8 * MB)
        self._clock_us = clock_us
        self.mark_every_s = mark_every_s
        self.dropped = 0
        self._listeners: list[Callable[[], None]] = []
        self._segments: list[_Segment] = []
        self._seqs: list[int] = []  # live (un-acked, not quarantined) entries, from _head on
        self._locs: list[tuple[_Segment, int, int]] = []  # (segment, data offset, length)
        self._head = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_size = 0
        self._size = 0
        self._file: BinaryIO | None = None
        self._mark_written_at = 0.0
        self.directory.mkdir(parents=True, exist_ok=True)
        self._acked = self._read_mark()
        rejected = {int(p.stem) for p in self._rejected_dir.glob("*.bin") if p.stem.isdigit()}
        self._tail = self._acked  # highest sequence appended or acked, ever
        for path in sorted(self.directory.glob("*.seg")):
            if path.stem.isdigit():
                self._load(path, rejected)
        self._issued = self._tail
        self._floored = False  # the clock floor applies once per open

    # -- reading state -------------------------------------------------------------------

    @property
    def acked(self) -> int:
        """Every entry with a sequence up to this one is acknowledged (and freed)."""
        return self._acked

    @property
    def size_bytes(self) -> int:
        """Bytes of segment files on disk."""
        return self._size

    @property
    def pending_count(self) -> int:
        """Entries appended and not yet acked, dropped or quarantined."""
        return len(self._seqs) - self._head

    @property
    def last_sequence(self) -> int:
        """The highest sequence appended (or acked) so far; 0 for a new spool."""
        return self._tail

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every append (e.g. to wake a sender)."""
        self._listeners.append(callback)

    def next_sequence(self) -> int:
        """The sequence after any handed out or stored; the first after opening is also not
        below the wall clock (µs), the rest follow it one by one."""
        nxt = max(self._issued, self._tail) + 1
        if not self._floored:
            nxt = max(nxt, self._clock_us())
            self._floored = True
        self._issued = nxt
        return nxt

    def count_after(self, after: int) -> int:
        """How many live entries have a sequence above ``after``."""
        return len(self._seqs) - bisect.bisect_right(self._seqs, after, lo=self._head)

    def pending(self, after: int, limit: int | None = None) -> list[tuple[int, bytes]]:
        """Live entries with a sequence above ``after``, in order, at most ``limit`` of them."""
        start = bisect.bisect_right(self._seqs, after, lo=self._head)
        stop = len(self._seqs) if limit is None else min(len(self._seqs), start + limit)
        out: list[tuple[int, bytes]] = []
        files: dict[Path, BinaryIO] = {}
        try:
            for i in range(start, stop):
                seq = self._seqs[i]
                data = self._cache.get(seq)
                if data is None:
                    seg, offset, length = self._locs[i]
                    f = files.get(seg.path)
                    if f is None:
                        f = files[seg.path] = seg.path.open("rb")
                    f.seek(offset)
                    data = f.read(length)
                out.append((seq, data))
        finally:
            for f in files.values():
                f.close()
        return out

    # -- changing state ------------------------------------------------------------------

    def append(self, seq: int, data: bytes) -> None:
        """Store ``data`` under ``seq``, which must exceed every sequence stored so far."""
        if seq <= self._tail:
            raise ValueError(f"sequence {seq} does not grow (last is {self._tail})")
        record = _HEADER.pack(len(data), _crc(seq, data), seq) + data
        seg = self._segments[-1] if self._file is not None else None
        if seg is None or (seg.size and seg.size + len(record) > self.segment_bytes):
            seg = self._roll(seq)
        assert self._file is not None
        self._file.write(record)
        self._file.flush()
        self._seqs.append(seq)
        self._locs.append((seg, seg.size + _HEADER.size, len(data)))
        seg.size += len(record)
        seg.last = seq
        self._size += len(record)
        self._tail = seq
        self._remember(seq, data)
        self._enforce_bound()
        for callback in self._listeners:
            callback()

    def ack(self, seq: int) -> None:
        """Free every entry up to ``seq``; delete segments that hold nothing newer."""
        if seq <= self._acked:
            return
        self._acked = seq
        self._tail = max(self._tail, seq)
        self._head = bisect.bisect_right(self._seqs, seq, lo=self._head)
        while self._cache and next(iter(self._cache)) <= seq:
            self._cache_size -= len(self._cache.popitem(last=False)[1])
        # the open segment stays until it is rolled: deleting it here would cost a file
        # create, an fsync and an unlink per batch when the receiver keeps up
        closed = self._segments[:-1] if self._file is not None else self._segments
        done = [s for s in closed if s.last <= seq]
        if done or time.monotonic() - self._mark_written_at >= self.mark_every_s:
            self._write_mark()  # before deleting: the mark then still knows the last sequence
        for seg in done:
            self._delete(seg)
        if self._head > 1024 and self._head * 2 > len(self._seqs):
            del self._seqs[: self._head], self._locs[: self._head]
            self._head = 0

    def quarantine(self, seq: int, reason: str) -> Path | None:
        """Move entry ``seq`` out of the queue into ``rejected/<seq>.bin`` (+ ``.reason``).

        Returns the file written, or ``None`` when ``seq`` is not pending (already acked or
        dropped). The quarantine survives restarts: a reopened spool skips these entries.
        """
        i = bisect.bisect_left(self._seqs, seq, lo=self._head)
        if i == len(self._seqs) or self._seqs[i] != seq:
            return None
        (entry,) = self.pending(seq - 1, limit=1)
        self._rejected_dir.mkdir(exist_ok=True)
        path = self._rejected_dir / f"{seq}.bin"
        path.write_bytes(entry[1])
        path.with_suffix(".reason").write_text(reason + "\n", encoding="utf-8")
        del self._seqs[i], self._locs[i]
        if (data := self._cache.pop(seq, None)) is not None:
            self._cache_size -= len(data)
        return path

    def sync(self) -> None:
        """Fsync the open segment: every entry appended so far survives a power cut too (for
        senders that confirm receipt upstream, such as webhook adapters, before an ack)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Fsync the open segment and the acked mark. The spool must not be used after."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        self._write_mark()

    # -- internals -----------------------------------------------------------------------

    @property
    def _rejected_dir(self) -> Path:
        return self.directory / "rejected"

    def _roll(self, first: int) -> _Segment:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        seg = _Segment(first, self.directory / f"{first:020d}.seg")
        self._file = seg.path.open("ab")
        self._segments.append(seg)
        return seg

    def _remember(self, seq: int, data: bytes) -> None:
        self._cache[seq] = data
        self._cache_size += len(data)
        while self._cache_size > self._cache_limit and self._cache:
            self._cache_size -= len(self._cache.popitem(last=False)[1])

    def _enforce_bound(self) -> None:
        while self._size > self.max_bytes and len(self._segments) > 1:
            seg = self._segments[0]
            end = bisect.bisect_right(self._seqs, seg.last, lo=self._head)
            lost = end - self._head
            for seq in self._seqs[self._head : end]:
                if (data := self._cache.pop(seq, None)) is not None:
                    self._cache_size -= len(data)
            self._head = end
            self._delete(seg)
            if lost:
                self.dropped += lost
                log.warning(
                    "spool over its bound: dropped the oldest un-acked batches",
                    directory=str(self.directory),
                    batches=lost,
                    max_bytes=self.max_bytes,
                    dropped_total=self.dropped,
                )

    def _delete(self, seg: _Segment) -> None:
        if seg is self._segments[-1] and self._file is not None:
            self._file.close()
            self._file = None
        self._segments.remove(seg)
        self._size -= seg.size
        seg.path.unlink(missing_ok=True)

    def _load(self, path: Path, rejected: set[int]) -> None:
        """Index the intact records of one segment; cut off a torn or corrupt tail."""
        raw = path.read_bytes()
        seg = _Segment(int(path.stem), path)
        pos = 0
        while pos + _HEADER.size <= len(raw):
            length, crc, seq = _HEADER.unpack_from(raw, pos)
            body = pos + _HEADER.size
            data = raw[body : body + length]
            if len(data) != length or _crc(seq, data) != crc or seq <= seg.last:
                break
            newest = self._seqs[-1] if self._seqs else 0
            if seq > max(self._acked, newest) and seq not in rejected:
                self._seqs.append(seq)
                self._locs.append((seg, body, length))
                self._remember(seq, data)
            seg.last = seq
            self._tail = max(self._tail, seq)
            pos = body + length
        if pos < len(raw):
            log.warning(
                "spool segment has a torn or corrupt tail; ignoring it",
                segment=str(path),
                kept_bytes=pos,
                ignored_bytes=len(raw) - pos,
            )
            with path.open("r+b") as f:
                f.truncate(pos)
        seg.size = pos
        if pos == 0 or seg.last <= self._acked:
            path.unlink()
            return
        self._segments.append(seg)
        self._size += pos

    def _read_mark(self) -> int:
        path = self.directory / "acked"
        try:
            return int(path.read_text(encoding="ascii").strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning(
                "spool acked mark unreadable; replaying everything kept",
                path=str(path),
                error=str(exc),
            )
            return 0

    def _write_mark(self) -> None:
        path = self.directory / "acked"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="ascii") as f:
            f.write(f"{self._acked}\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)  # make the rename itself durable
        finally:
            os.close(fd)
        self._mark_written_at = time.monotonic()
