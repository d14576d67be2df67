"""The command line: settings shown as reloadable TOML with secrets masked, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysmonstm.cli import app
from sysmonstm.config import load_settings

runner = CliRunner()


def test_config_show_prints_toml_that_loads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSMONSTM_GATEWAY__LISTEN", "0.0.0.0:9999")
    monkeypatch.setenv("SYSMONSTM_WARM__RETENTION_RAW_S", "3d")
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    saved = tmp_path / "saved.toml"
    saved.write_text(shown.output)
    monkeypatch.delenv("SYSMONSTM_GATEWAY__LISTEN")
    monkeypatch.delenv("SYSMONSTM_WARM__RETENTION_RAW_S")
    again = load_settings(config_file=saved)
    assert again.gateway.listen == "0.0.0.0:9999"
    assert again.warm.retention_raw_s == 3 * 86400


def test_config_show_masks_passwords_in_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSMONSTM_WARM__URL", "postgresql://bob:s3cret@db.example/telemetry")
    for args in (["config", "show"], ["config", "show", "--json"]):
        shown = runner.invoke(app, args)
        assert shown.exit_code == 0
        assert "s3cret" not in shown.output
        assert "postgresql://***@db.example/telemetry" in shown.output


def test_bad_settings_exit_2_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSMONSTM_COLLECTOR__INTERVAL_S", "0.01")
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 2
    assert "interval_s" in shown.output


def test_rules_check_lists_rules_or_names_the_mistake(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[[rule]]\nname = "hot"\ntopic = "metrics.>"\nfield = "cpu.used"\n'
        'op = "gt"\nthreshold = 90\n'
    )
    listed = runner.invoke(app, ["rules", "check", str(good)])
    assert listed.exit_code == 0
    assert "hot" in listed.output
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[rule]]\nname = "oops"\ntopic = "metrics.>"\nfield = "cpu.used"\n'
        'op = "greater"\nthreshold = 90\n'
    )
    refused = runner.invoke(app, ["rules", "check", str(bad)])
    assert refused.exit_code == 1
    assert "oops" in refused.output
    assert "op" in refused.output
