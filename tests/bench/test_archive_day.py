"""A recording shorter than a day, repeated to fill one for the warm tier's bytes."""

from __future__ import annotations

import numpy as np

from bench.archive import DAY_S, Dataset, repeated_to_a_day
from sysmonstm.store.model import SeriesBatch, SourceInfo

T0 = 1_796_400_000_000


def _recording(frames: int, per_batch: int) -> Dataset:
    src = SourceInfo("metrics", "recorded")
    times = T0 + np.arange(frames, dtype=np.int64) * 1000
    values = np.arange(frames * 2, dtype=np.float64).reshape(frames, 2)
    batches = [
        SeriesBatch(
            src, k // per_batch + 1, ("a", "b"), times[k : k + per_batch], values[k : k + per_batch]
        )
        for k in range(0, frames, per_batch)
    ]
    return Dataset("recorded", "a test recording", batches)


def test_copies_follow_each_other_up_to_a_day_and_keep_the_values() -> None:
    day = repeated_to_a_day(_recording(7000, 300))  # 7,000 s: 12 copies and a part
    assert day is not None
    times = np.concatenate([b.times_ms for b in day.batches])
    assert len(times) == DAY_S
    assert (np.diff(times) == 1000).all()  # each copy right after the previous one
    assert times[0] == T0
    values = np.concatenate([b.values for b in day.batches])
    assert values[7000].tolist() == [0.0, 1.0]  # the second copy starts over
    assert values[-1].tolist() == values[DAY_S % 7000 - 1].tolist()
    assert [b.sequence for b in day.batches] == list(range(1, len(day.batches) + 1))


def test_a_day_long_recording_is_left_as_it_is() -> None:
    assert repeated_to_a_day(_recording(DAY_S, 3600)) is None
