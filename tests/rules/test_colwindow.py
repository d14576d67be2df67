"""Windows in columns give bit for bit what the one-window classes give, and rings keep order."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sysmonstm.rules.colwindow import KINDS, WindowColumns
from sysmonstm.rules.model import Aggregate, Window
from sysmonstm.rules.rings import Rings
from sysmonstm.rules.window import SlidingWindow, new_window


def ids(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_column_windows_match_the_window_classes(seed: int) -> None:
    """Random adds and expiries on many windows of every kind: identical results, or both
    unknown."""
    rng = random.Random(seed)
    n = 120
    columns = WindowColumns()
    columns.ensure(n)
    classes: list[SlidingWindow] = []
    for i in range(n):
        agg = rng.choice(list(Aggregate))
        span = rng.choice([1000, 5000, 60_000])
        classes.append(new_window(Window(agg, span)))
        columns.reset(ids(i), ids(KINDS[agg]), ids(span))
    times = [0] * n
    for step in range(600):
        chosen = sorted(rng.sample(range(n), 30))
        if step % 7 == 0:  # time passes without samples
            now = [times[i] + rng.choice([500, 2000, 70_000]) for i in chosen]
            columns.expire(np.array(chosen, np.int64), np.array(now, np.int64))
            got, known = columns.results(np.array(chosen, np.int64))
            for j, i in enumerate(chosen):
                classes[i].expire(now[j])
                times[i] = now[j]
                want = classes[i].result()
                assert (want is None) == (not known[j])
                assert want is None or want == got[j]
            continue
        t, v = [], []
        for i in chosen:
            times[i] += rng.choice([0, 100, 1000, 3000, 20_000])
            t.append(times[i])
            v.append(rng.choice([rng.uniform(0, 100), rng.uniform(0, 1e9), 5.0, 0.1]))
        got, known = columns.add(
            np.array(chosen, np.int64), np.array(t, np.int64), np.array(v, np.float64)
        )
        for j, i in enumerate(chosen):
            want = classes[i].add_result(t[j], v[j])
            assert (want is None) == (not known[j])
            assert want is None or want == got[j]


def test_rings_keep_each_ring_in_order_through_growth_and_compaction() -> None:
    """Rings regrow when full and survive compaction with their elements in order."""
    rings = Rings()
    rings.ensure(50)
    rng = random.Random(3)
    model: list[list[int]] = [[] for _ in range(50)]
    for step in range(2000):
        chosen = np.array(sorted(rng.sample(range(50), 10)), np.int64)
        rings.push(chosen, np.full(10, step, np.int64), np.full(10, float(step)))
        for i in chosen.tolist():
            model[i].append(step)
        pop = chosen[[rng.random() < 0.4 and len(model[i]) > 1 for i in chosen.tolist()]]
        if len(pop):
            rings.pop_front(pop)
            for i in pop.tolist():
                model[i].pop(0)
        if step % 500 == 499:
            rings.compact()
    for i in range(50):
        assert rings.values(i).tolist() == [float(x) for x in model[i]]
