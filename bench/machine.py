"""The machine and software a benchmark ran on, for the report's header."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import psutil


@dataclass(frozen=True, slots=True)
class Machine:
    cpu: str
    cores: int
    ram_gib: float
    os: str
    kernel: str
    python: str
    sqlite: str
    grpcio: str
    protobuf: str
    numpy: str
    temp_fs: str  # the file system the databases were written to
    pyarrow: str = ""
    postgres: str = ""  # the PostgreSQL server used, when a suite needed one

    def as_dict(self) -> dict[str, str | int | float]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _fs_of(path: Path) -> str:
    """``device on mount (type)`` of the mount holding ``path``, best effort."""
    best = None
    resolved = str(path.resolve())
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) > len(best.mountpoint)):
            best = part
    return f"{best.fstype} ({best.device} on {best.mountpoint})" if best else "unknown"


def describe(temp_dir: Path) -> Machine:
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram_gib=round(psutil.virtual_memory().total / 1024**3, 1),
        os=_os_name(),
        kernel=platform.release(),
        python=sys.version.split()[0],
        sqlite=sqlite3.sqlite_version,
        grpcio=_version("grpcio"),
        protobuf=_version("protobuf"),
        numpy=_version("numpy"),
        temp_fs=_fs_of(temp_dir),
        pyarrow=_version("pyarrow"),
    )
