"""The latency suite's bookkeeping: every frame sent must arrive once; figures after warm-up."""

from __future__ import annotations

import pytest

from bench.latency import LatencyOptions, Watch, _figures
from bench.procs import BenchError

START = 1_000_000
RESULT = {"start_ms": START, "hosts": {"h-0": 3}, "late_max_ms": 1.0, "message_bytes": 10}


def watched(*frames: tuple[int, int, float]) -> Watch:
    """A watch that saw h-0's sequences 1.. as (frame time, published, arrived)."""
    w = Watch()
    for seq, seen in enumerate(frames, start=1):
        w.frames[("h-0", seq)] = [seen]
    return w


def test_figures_leave_out_the_warm_up_and_split_the_latency() -> None:
    w = watched(
        (START - 500, START - 499, START - 400.0),
        (START + 1000, START + 1002, START + 1005.0),
        (START + 2000, START + 2001, START + 2003.0),
    )
    f = _figures(w, RESULT, LatencyOptions(warm_up_s=1.0))
    keys = ("frames", "frames_checked", "max_ms", "p50_ms", "published_p50_ms", "pushed_p50_ms")
    assert {k: f[k] for k in keys} == {
        "frames": 2,
        "frames_checked": 3,
        "max_ms": 5.0,
        "p50_ms": 5.0,  # of 3 and 5 ms, the upper median
        "published_p50_ms": 2.0,
        "pushed_p50_ms": 3.0,
    }


def test_a_lost_frame_fails_the_run() -> None:
    w = watched((START, START, START + 1.0), (START + 1000, START + 1000, START + 1001.0))
    with pytest.raises(BenchError, match="1 of 3 frames never reached"):
        _figures(w, RESULT, LatencyOptions())


def test_a_frame_seen_twice_fails_the_run() -> None:
    w = watched(*((START + i * 1000, START + i * 1000, START + i * 1000 + 1.0) for i in range(3)))
    w.frames[("h-0", 2)].append(w.frames[("h-0", 2)][0])
    with pytest.raises(BenchError, match="1 arrived twice"):
        _figures(w, RESULT, LatencyOptions())
