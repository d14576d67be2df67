"""Host counters: ``/proc`` parsed as psutil parses it, files kept open, psutil as fallback."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from sysmonstm.domains.metrics.counters import (
    Memory,
    ProcCounters,
    PsutilCounters,
    _ProcFile,
    open_counters,
)

LINUX = os.path.exists("/proc/stat")
STAT = """\
cpu  100 5 50 800 20 3 2 1 7 0
cpu0 60 5 30 400 10 2 1 1 7 0
cpu1 40 0 20 400 10 1 1 0 0 0
intr 12345 0 0
ctxt 999
"""
MEMINFO = """\
MemTotal:        1000 kB
MemFree:          200 kB
MemAvailable:     600 kB
Buffers:           10 kB
SwapTotal:        500 kB
SwapFree:         400 kB
"""
DISKSTATS = """\
   7       0 loop0 1 0 2 0 3 0 4 0 0 0 0 0 0 0 0 0 0
 253       0 vda 94692 5 1000 7 322387 9 2000 11 0 12 13 0 0 0 0 0 0
 253       1 vda1 90000 5 900 7 300000 9 1900 11 0 12 13 0 0 0 0
"""
NETDEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls \
carrier compressed
    lo: 61 20 0 0 0 0 0 0 61 20 0 0 0 0 0 0
  eth0: 950 265 1 2 0 0 0 0 133 130 3 4 0 0 0 0
"""


def fake_proc(root: Path, meminfo: str = MEMINFO) -> Path:
    (root / "net").mkdir(parents=True)
    for name, text in (("stat", STAT), ("meminfo", meminfo), ("diskstats", DISKSTATS),
                       ("net/dev", NETDEV)):  # fmt: skip
        (root / name).write_text(text)
    for pid in ("1", "42", "self", "sys"):
        (root / pid).mkdir()
    return root


def test_proc_files_are_parsed_as_psutil_reads_them(tmp_path: Path) -> None:
    proc = ProcCounters(str(fake_proc(tmp_path)))
    host, cores = proc.cpu()
    assert host == (100, 5, 50, 800, 20, 3, 2, 1, 7, 0)
    assert cores == [(60, 5, 30, 400, 10, 2, 1, 1, 7, 0), (40, 0, 20, 400, 10, 1, 1, 0, 0, 0)]
    assert proc.memory() == Memory(1000 * 1024, 600 * 1024, 500 * 1024, 400 * 1024)
    assert proc.disks() == {
        "loop0": (1, 3, 2 * 512, 4 * 512),
        "vda": (94692, 322387, 1000 * 512, 2000 * 512),
        "vda1": (90000, 300000, 900 * 512, 1900 * 512),
    }
    assert proc.nics() == {
        "lo": (61, 61, 20, 20, 0, 0, 0, 0),
        "eth0": (133, 950, 130, 265, 1, 3, 2, 4),  # sent first, as psutil has it
    }
    assert proc.process_count() == 2
    proc.close()


def test_files_stay_open_and_each_read_sees_the_current_content(tmp_path: Path) -> None:
    proc = ProcCounters(str(fake_proc(tmp_path)))
    (tmp_path / "meminfo").write_text(MEMINFO.replace("600 kB", "700 kB"))  # same inode
    assert proc.memory().available == 700 * 1024
    (tmp_path / "net" / "dev").unlink()  # an open file is still read, not looked up again
    assert "eth0" in proc.nics()
    proc.close()


def test_a_file_longer_than_the_buffer_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big"
    text = b"".join(b"line %d\n" % i for i in range(40_000))  # ~400 KB
    path.write_bytes(text)
    f = _ProcFile(str(path))
    assert f.read() == text
    f.close()


def test_a_proc_without_what_is_needed_falls_back_to_psutil(tmp_path: Path) -> None:
    old = fake_proc(tmp_path / "old", MEMINFO.replace("MemAvailable", "Cached"))
    with pytest.raises(ValueError, match="MemAvailable"):
        ProcCounters(str(old))
    chosen = open_counters((lambda: ProcCounters(str(old)), PsutilCounters))
    assert isinstance(chosen, PsutilCounters)
    with pytest.raises(FileNotFoundError):
        ProcCounters(str(tmp_path / "absent"))


@pytest.mark.skipif(not LINUX, reason="Linux /proc only")
def test_the_real_proc_agrees_with_psutil() -> None:
    proc, ps = ProcCounters(), PsutilCounters()
    assert isinstance(open_counters(), ProcCounters)
    assert proc.memory().total == ps.memory().total
    assert proc.memory().swap_total == ps.memory().swap_total
    assert abs(proc.memory().available - ps.memory().available) < 64 * 1024**2
    assert len(proc.cpu()[1]) == len(ps.cpu()[1]) == psutil.cpu_count()
    tick = os.sysconf("SC_CLK_TCK")
    ps_user, proc_user = ps.cpu()[0][0], proc.cpu()[0][0] / tick  # seconds vs ticks
    assert ps_user <= proc_user + 1.0 / tick
    assert proc_user - ps_user < 5.0
    assert set(proc.disks()) == set(ps.disks())
    assert set(proc.nics()) == set(ps.nics())
    for name, counters in ps.nics().items():
        assert all(p >= q for p, q in zip(proc.nics()[name], counters, strict=True))
    assert abs(proc.process_count() - ps.process_count()) < 50
    proc.close()
