"""HostSampler: the documented series, canonical keys, finite values, rates from call two."""

from __future__ import annotations

import math
import os
import time
from collections import namedtuple

import psutil
import pytest

from sysmonstm.domains.metrics.counters import PsutilCounters
from sysmonstm.domains.metrics.sampler import HostSampler
from sysmonstm.store.series import format_series, parse_series

CPU_FIELDS = ("used", "user", "system", "iowait", "idle")
Temp = namedtuple("Temp", "label current high critical")
NetIO = namedtuple(
    "NetIO", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout"
)


def two_samples(sampler: HostSampler) -> tuple[dict[str, float], dict[str, float]]:
    first = dict(zip(*sampler.sample(), strict=True))
    time.sleep(0.1)  # every CPU clock advances meanwhile, idle included
    second = dict(zip(*sampler.sample(), strict=True))
    return first, second


def metrics_with_tag(sample: dict[str, float], metric: str, tag: str) -> set[str]:
    values = set()
    for key in sample:
        name, tags = parse_series(key)
        if name == metric:
            values.add(dict(tags)[tag])
    return values


def test_the_first_call_returns_gauges_and_the_second_adds_cpu_and_rates() -> None:
    first, second = two_samples(HostSampler())
    gauges = {"load.1", "load.5", "load.15", "mem.used_pct", "mem.used_bytes",
              "mem.available_bytes", "mem.total_bytes", "swap.used_pct", "swap.used_bytes",
              "swap.total_bytes", "proc.count", 'disk.used_pct{mount="/"}',
              'disk.used_bytes{mount="/"}', 'disk.total_bytes{mount="/"}'}  # fmt: skip
    assert gauges <= set(first)
    assert not any(k.startswith(("cpu.", "net.", "disk.read", "disk.write")) for k in first)
    assert gauges <= set(second)
    assert {f"cpu.{f}" for f in CPU_FIELDS} <= set(second)
    cores = psutil.cpu_count() or 1
    for n in range(cores):
        for f in CPU_FIELDS:
            assert format_series(f"cpu.core.{f}", {"cpu": str(n)}) in second


def test_every_key_is_canonical_and_unique_and_every_value_finite() -> None:
    sampler = HostSampler()
    sampler.sample()
    time.sleep(0.05)
    keys, values = sampler.sample()
    assert len(keys) == len(values) == len(set(keys))
    for key in keys:
        metric, tags = parse_series(key)
        assert format_series(metric, dict(tags)) == key
    assert all(math.isfinite(v) for v in values)


def test_percentages_and_rates_are_in_range() -> None:
    _, s = two_samples(HostSampler())
    for key, value in s.items():
        if key.startswith("cpu.") or "_pct" in key:
            assert 0.0 <= value <= 100.0, key
        if "_bps" in key or "_ps" in key or "_iops" in key:
            assert value >= 0.0, key
    assert s["cpu.used"] == pytest.approx(100.0 - s["cpu.idle"] - s["cpu.iowait"], abs=1e-6)
    assert s["mem.used_bytes"] + s["mem.available_bytes"] == s["mem.total_bytes"]


def test_disk_rates_cover_whole_disks_only_and_nics_exclude_loopback() -> None:
    _, s = two_samples(HostSampler())
    disks = metrics_with_tag(s, "disk.read_bps", "disk")
    assert not any(d.startswith(("loop", "ram", "zram")) for d in disks)
    if os.path.isdir("/sys/block"):
        assert disks <= set(os.listdir("/sys/block"))  # no partitions
    for metric in ("disk.write_bps", "disk.read_iops", "disk.write_iops"):
        assert metrics_with_tag(s, metric, "disk") == disks
    nics = metrics_with_tag(s, "net.rx_bps", "iface")
    assert "lo" not in nics
    assert nics == set(psutil.net_io_counters(pernic=True)) - {"lo"}
    for metric in ("net.tx_bps", "net.rx_pps", "net.tx_pps", "net.rx_errors_ps",
                   "net.tx_errors_ps", "net.rx_drops_ps", "net.tx_drops_ps"):  # fmt: skip
        assert metrics_with_tag(s, metric, "iface") == nics


def test_disk_usage_is_refreshed_only_every_refresh_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = psutil.disk_usage

    def counting(path: str) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(psutil, "disk_usage", counting)
    now = [100.0]
    sampler = HostSampler(usage_refresh_s=10.0, clock=lambda: now[0])
    first = sampler.sample()
    per_refresh = len(calls)
    assert per_refresh >= 1
    for _ in range(9):
        now[0] += 1.0
        keys, _ = sampler.sample()
        assert 'disk.used_pct{mount="/"}' in keys  # reused between refreshes
    assert len(calls) == per_refresh
    now[0] += 1.0
    sampler.sample()
    assert len(calls) == 2 * per_refresh
    assert 'disk.used_pct{mount="/"}' in first[0]


def test_a_counter_that_goes_back_gives_no_rate_that_time(monkeypatch: pytest.MonkeyPatch) -> None:
    counters = iter([NetIO(1000, 2000, 10, 20, 0, 0, 0, 0), NetIO(3000, 2500, 12, 25, 0, 0, 0, 0),
                     NetIO(10, 10, 1, 1, 0, 0, 0, 0)])  # fmt: skip
    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic: {"eth9": next(counters)})
    now = [0.0]
    sampler = HostSampler(clock=lambda: now[0], counters=PsutilCounters())
    sampler.sample()
    now[0] = 2.0
    second = dict(zip(*sampler.sample(), strict=True))
    assert second['net.tx_bps{iface="eth9"}'] == 1000.0
    assert second['net.rx_bps{iface="eth9"}'] == 250.0
    assert second['net.rx_pps{iface="eth9"}'] == 2.5
    now[0] = 3.0
    third = dict(zip(*sampler.sample(), strict=True))
    assert 'net.tx_bps{iface="eth9"}' not in third
    assert third['net.rx_errors_ps{iface="eth9"}'] == 0.0  # counters that did not go back


def test_temperatures_get_sensor_and_label_tags_and_non_finite_ones_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temps = {"coretemp": [Temp("Core 0", 41.0, 80, 100), Temp("Core 0", 43.0, 80, 100),
                          Temp("", 39.5, None, None)],
             "acpitz": [Temp("", math.nan, None, None)]}  # fmt: skip
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: temps, raising=False)
    s = dict(zip(*HostSampler().sample(), strict=True))
    assert s['temp.celsius{label="Core 0",sensor="coretemp"}'] == 41.0
    assert s['temp.celsius{label="Core 0#1",sensor="coretemp"}'] == 43.0
    assert s['temp.celsius{label="2",sensor="coretemp"}'] == 39.5
    assert not any("acpitz" in k for k in s)


def test_a_host_without_sensors_is_looked_at_again_only_with_disk_usage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[float] = []
    now = [100.0]

    def none_found() -> dict[str, list[Temp]]:
        looks.append(now[0])
        return {}

    monkeypatch.setattr(psutil, "sensors_temperatures", none_found, raising=False)
    sampler = HostSampler(usage_refresh_s=10.0, clock=lambda: now[0])
    assert sampler.may_block()  # the first sample reads disk usage
    sampler.sample()
    for _ in range(9):
        now[0] += 1.0
        assert not sampler.may_block()  # counters only: fine on an event loop
        sampler.sample()
    now[0] += 1.0
    assert sampler.may_block()
    sampler.sample()
    assert looks == [100.0, 110.0]


def test_a_host_with_sensors_reads_them_every_sample_and_may_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[int] = []

    def one_sensor() -> dict[str, list[Temp]]:
        reads.append(1)
        return {"coretemp": [Temp("Core 0", 41.0, 80, 100)]}

    monkeypatch.setattr(psutil, "sensors_temperatures", one_sensor, raising=False)
    now = [0.0]
    sampler = HostSampler(clock=lambda: now[0])
    for _ in range(3):
        sampler.sample()
        now[0] += 1.0
        assert sampler.may_block()
    assert len(reads) == 3


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux /proc only")
def test_proc_and_psutil_counters_give_the_same_series() -> None:
    keys = []
    for counters in (None, PsutilCounters()):
        sampler = HostSampler(counters=counters)
        sampler.sample()
        time.sleep(0.05)
        keys.append(set(sampler.sample()[0]))
    assert keys[0] == keys[1]
