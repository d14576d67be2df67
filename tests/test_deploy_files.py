"""deploy/: the example settings load, and the systemd units run what exists, hardened."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from sysmonstm.cli import app
from sysmonstm.cli_certs import certs_app
from sysmonstm.config import Settings, load_settings
from sysmonstm.store.registry import open_warm
from tests.conftest import free_port
from tests.e2e.processes import Proc, base_env, poll, spawn, stop

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
DOC = ROOT / "docs" / "deploy.md"
ROLES = ("collector", "aggregator", "alerts", "gateway")
SERVER_SIDE = ("aggregator", "alerts", "gateway")
BIN = "/opt/sysmonstm/bin/sysmonstm"


def _settings(role: str) -> Settings:
    return load_settings(config_file=DEPLOY / f"{role}.toml")


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (keys may repeat in systemd)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_there_is_a_config_and_a_unit_per_role_and_nothing_else() -> None:
    assert sorted(p.name for p in DEPLOY.glob("*.toml")) == sorted(f"{r}.toml" for r in ROLES)
    assert sorted(p.name for p in DEPLOY.glob("*.service")) == sorted(
        f"sysmonstm-{r}.service" for r in ROLES
    )


@pytest.mark.parametrize("role", ROLES)
def test_the_example_config_loads(role: str) -> None:
    settings = _settings(role)
    assert settings.data_dir == Path("/var/lib/sysmonstm")
    assert settings.log.format == "json"


def test_the_server_side_services_share_one_bus_and_the_same_tiers() -> None:
    agg, *others = (_settings(r) for r in SERVER_SIDE)
    for other in others:
        for part in ("bus", "hot", "warm", "archive"):
            assert getattr(other, part) == getattr(agg, part), part
    assert agg.bus.url.startswith("nats://")
    assert agg.hot.url.startswith("redis://")
    assert agg.warm.url.startswith("postgresql://")
    assert agg.archive.url.startswith("s3://")
    assert agg.archive.s3_endpoint_url


def test_collectors_fail_over_between_two_aggregators_over_mutual_tls() -> None:
    collector, aggregator = _settings("collector"), _settings("aggregator")
    assert len(collector.collector.aggregators) == 2
    assert all(a.endswith(":50051") for a in collector.collector.aggregators)
    assert aggregator.aggregator.listen.endswith(":50051")
    for tls in (collector.collector.tls, aggregator.aggregator.tls):
        assert None not in (tls.ca, tls.cert, tls.key)
    assert collector.collector.tls.ca == aggregator.aggregator.tls.ca


def test_every_file_the_configs_name_is_installed_by_the_walkthrough() -> None:
    doc = DOC.read_text()
    named = [
        *(getattr(_settings("collector").collector.tls, k) for k in ("ca", "cert", "key")),
        *(getattr(_settings("aggregator").aggregator.tls, k) for k in ("ca", "cert", "key")),
        *_settings("alerts").rules.files,
    ]
    for path in named:
        assert str(path) in doc, path
    for role in ROLES:
        assert f"deploy/{role}.toml" in doc
        assert f"sysmonstm-{role}.service" in doc


def test_the_certs_commands_in_the_walkthrough_run(tmp_path: Path) -> None:
    """Every `sysmonstm certs ...` line of docs/deploy.md, run against a scratch directory."""
    lines = [
        line.strip()
        for line in DOC.read_text().splitlines()
        if line.strip().startswith("sysmonstm certs ")
    ]
    assert len(lines) >= 3
    runner = CliRunner()
    for line in lines:
        args = shlex.split(line.replace("~/sysmonstm-ca", str(tmp_path)), comments=True)[2:]
        result = runner.invoke(certs_app, args)
        assert result.exit_code == 0, f"{line}\n{result.output}"
    assert (tmp_path / "ca.key").is_file()


@pytest.mark.parametrize("role", ROLES)
def test_the_unit_runs_an_existing_subcommand_as_a_dedicated_user_hardened(role: str) -> None:
    unit = _unit(DEPLOY / f"sysmonstm-{role}.service")
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"][0])
    assert argv == [BIN, "--config", f"/etc/sysmonstm/{role}.toml", role]
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    assert argv[-1] in group.commands
    assert (DEPLOY / Path(argv[2]).name).is_file()
    expected = {
        "User": ["sysmonstm"],
        "Restart": ["on-failure"],
        "KillSignal": ["SIGTERM"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "CapabilityBoundingSet": [""],
    }
    assert {k: service.get(k) for k in expected} == expected
    assert float(service["TimeoutStopSec"][0].rstrip("s")) >= 30  # flush before SIGKILL
    assert "sysmonstm" in service["StateDirectory"][0].split()
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_collector_unit_may_write_its_spool_and_nothing_else_outside_its_state() -> None:
    service = _unit(DEPLOY / "sysmonstm-collector.service")["Service"]
    spool = _settings("collector").collector.spool_dir
    assert spool is not None
    writable = [Path(p) for p in service["ReadWritePaths"][0].split()]
    assert any(spool.is_relative_to(p) for p in writable)
    state = [Path("/var/lib") / d for d in service["StateDirectory"][0].split()]
    assert all(p in state for p in writable)  # StateDirectory= creates what it may write


def _verify_copies(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointed at this venv's sysmonstm, which exists here."""
    binary = Path(sys.executable).with_name("sysmonstm")
    assert binary.is_file(), "the package is not installed in this venv"
    copies = []
    for unit in sorted(DEPLOY.glob("*.service")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(BIN, str(binary)))
        copies.append(copy)
    return copies


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    copies = _verify_copies(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if any(c.name in line for c in copies)
    ]
    # verify exits 0 on unknown keys and bad values too; it only says so
    assert (done.returncode, said) == (0, [])


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="needs systemd-sysusers")
def test_the_sysusers_file_creates_the_service_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        [
            "systemd-sysusers",
            "--dry-run",
            f"--root={tmp_path}",
            str(DEPLOY / "sysmonstm.sysusers.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Creating user 'sysmonstm'" in done.stdout + done.stderr


def test_the_health_check_script_is_executable() -> None:
    script = DEPLOY / "sysmonstm-grpc-health"
    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/opt/sysmonstm/bin/python\n")


def _exec_start(role: str) -> list[str]:
    """The unit's command, with this venv's binary and deploy/'s settings file."""
    argv = shlex.split(_unit(DEPLOY / f"sysmonstm-{role}.service")["Service"]["ExecStart"][0])
    argv[0] = str(Path(sys.executable).with_name("sysmonstm"))
    argv[2] = str(DEPLOY / Path(argv[2]).name)
    return argv


def _timeout_stop_s(role: str) -> float:
    return float(_unit(DEPLOY / f"sysmonstm-{role}.service")["Service"]["TimeoutStopSec"][0][:-1])


def _logged(proc: Proc, event: str, **fields: str) -> bool:
    return any(
        line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        for line in proc.lines()
    )


async def _stored_through(warm_url: str, machine: str) -> int:
    warm = open_warm(warm_url)
    await warm.open()
    try:
        return await warm.stored_through("metrics", machine)
    finally:
        await warm.close()


@pytest.mark.e2e
def test_the_units_commands_with_the_deploy_settings_fail_over_over_mutual_tls(
    tmp_path: Path,
) -> None:
    """The aggregator and collector as the units run them (embedded tiers and throwaway
    certificates swapped in through the environment, which wins over the file): the collector
    skips a dead aggregator, streams to the live one, and both stop cleanly on SIGTERM."""
    pki = tmp_path / "pki"
    made = CliRunner().invoke(
        certs_app,
        [
            "dev",
            "--out",
            str(pki),
            "--server",
            "localhost",
            "--san",
            "127.0.0.1",
            "--client",
            "box",
        ],
    )
    assert made.exit_code == 0, made.output
    live, dead = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    warm_url = f"sqlite:///{tmp_path / 'agg' / 'warm.db'}"
    agg_env = base_env(
        tmp_path / "agg",
        bus__url="memory://",
        hot__url="memory://",
        warm__url=warm_url,
        archive__url="",
        aggregator__listen=live,
        aggregator__tls__cert=str(pki / "server-localhost.pem"),
        aggregator__tls__key=str(pki / "server-localhost.key"),
        aggregator__tls__ca=str(pki / "ca.pem"),
    )
    col_env = base_env(
        tmp_path / "col",
        collector__aggregators=json.dumps([dead, live]),
        collector__spool_dir=str(tmp_path / "col" / "spool"),
        collector__machine_id="deploy-box",
        collector__interval_s="0.2",
        collector__tls__ca=str(pki / "ca.pem"),
        collector__tls__cert=str(pki / "client-box.pem"),
        collector__tls__key=str(pki / "client-box.key"),
    )
    agg = spawn(_exec_start("aggregator"), agg_env, tmp_path / "aggregator.log")
    col: Proc | None = None
    try:
        agg.wait_log("aggregator listening")
        col = spawn(_exec_start("collector"), col_env, tmp_path / "collector.log")
        poll(lambda: _logged(col, "streaming to aggregator", address=live), 30, "failover")
        assert _logged(col, "stream to aggregator failed", address=dead)
        health = subprocess.run(
            [
                *(sys.executable, str(DEPLOY / "sysmonstm-grpc-health"), "--addr", live),
                *("--tls-ca-cert", str(pki / "ca.pem")),
                *("--tls-client-cert", str(pki / "client-box.pem")),
                *("--tls-client-key", str(pki / "client-box.key")),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert health.stdout.strip() == "status: SERVING", health.stderr
        assert stop(col, timeout=_timeout_stop_s("collector")) == 0
    finally:
        if col is not None and col.popen.poll() is None:
            stop(col)
        code = stop(agg, timeout=_timeout_stop_s("aggregator"))
    assert code == 0, agg.text()[-3000:]
    assert asyncio.run(_stored_through(warm_url, "deploy-box")) > 0
