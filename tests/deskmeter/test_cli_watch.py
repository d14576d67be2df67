"""``sysmonstm deskmeter watch``: flags into options, clear refusals, the notifier beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysmonstm.cli import app
from sysmonstm.config import load_settings
from sysmonstm.domains.deskmeter.cli_watch import (
    notifications,
    session_bus_reachable,
    watch_options,
)

runner = CliRunner()


def test_settings_become_watch_options(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "data_dir": str(tmp_path),
            "deskmeter": {
                "aggregators": ["a:1", "b:2"],
                "heartbeat_s": "5s",
                "idle_after_s": "2m",
                "poll_s": 1,
                "machine_id": "m-1",
                "time_zone": "Asia/Tokyo",
                "gateway": "http://gw:8080",
            },
        }
    )
    opts = watch_options(settings, "wmctrl", ":7")
    assert opts.aggregators == ("a:1", "b:2")
    assert (opts.heartbeat_s, opts.idle_after_s, opts.poll_s) == (5.0, 120.0, 1.0)
    assert (opts.source, opts.display, opts.machine_id) == ("wmctrl", ":7", "m-1")
    assert (opts.time_zone, opts.gateway) == ("Asia/Tokyo", "http://gw:8080")
    assert opts.spool_dir == tmp_path / "spool" / "deskmeter"
    assert opts.tls is None


@pytest.mark.parametrize(
    ("env", "reachable"),
    [
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:path={bus}"}, True),
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:path={missing}"}, False),
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:abstract=/tmp/dbus-x,guid=1"}, True),
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:path={missing};unix:path={bus}"}, True),
        ({"XDG_RUNTIME_DIR": "{dir}"}, True),
        ({"XDG_RUNTIME_DIR": "{empty}"}, False),
        ({}, False),
    ],
    ids=["path", "missing-path", "abstract", "second-address", "runtime-dir", "no-bus", "none"],
)
def test_a_session_bus_is_reachable_when_its_socket_is_announced(
    tmp_path: Path, env: dict[str, str], reachable: bool
) -> None:
    (tmp_path / "bus").touch()
    (tmp_path / "empty").mkdir()
    names = {
        "bus": tmp_path / "bus",
        "missing": tmp_path / "gone",
        "dir": tmp_path,
        "empty": tmp_path / "empty",
    }
    assert session_bus_reachable({k: v.format(**names) for k, v in env.items()}) is reachable


def test_notifications_run_beside_the_watcher_only_when_wanted_and_possible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bus").touch()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'bus'}")
    wanted = load_settings({"data_dir": str(tmp_path)})
    assert len(notifications(wanted)) == 1
    off = load_settings({"data_dir": str(tmp_path), "deskmeter": {"notify": False}})
    assert notifications(off) == []
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'gone'}")
    assert notifications(wanted) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "wayland"], "--source is auto, x11 or wmctrl"),
        (["--heartbeat", "0.01"], "0.1"),
    ],
    ids=["source", "heartbeat"],
)
def test_flags_that_cannot_work_are_refused(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["deskmeter", "watch", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_without_a_display_the_watcher_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "deskmeter", "watch", "--no-notify"])
    assert result.exit_code == 1
    assert "no X display" in result.output
    assert not list((tmp_path / "spool" / "deskmeter").glob("*.seg"))  # nothing half-written
