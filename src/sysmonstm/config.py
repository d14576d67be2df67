"""Typed settings: defaults < TOML file < environment (``SYSMONSTM_*``) < command-line flags.

Nested sections map to env names with ``__``: ``SYSMONSTM_WARM__URL=sqlite:///tmp/w.db``.
The TOML file is ``$SYSMONSTM_CONFIG`` or ``$XDG_CONFIG_HOME/sysmonstm/sysmonstm.toml``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"7d"``, ``"2y"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
    raise ValueError(f"not a duration: {value!r} (use seconds or e.g. '90s', '15m', '7d', '2y')")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sysmonstm"


def default_config_file() -> Path:
    explicit = os.environ.get("SYSMONSTM_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sysmonstm" / "sysmonstm.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusSettings(_Section):
    url: str = "memory://"


class HotSettings(_Section):
    url: str = "memory://"
    window_s: float = 300.0

    _w = field_validator("window_s", mode="before")(parse_duration)


class WarmSettings(_Section):
    url: str = ""  # empty: sqlite:///<data_dir>/warm.db
    retention_raw_s: float = 7 * 86400.0
    retention_1m_s: float = 90 * 86400.0
    retention_1h_s: float = 2 * 365 * 86400.0
    synchronous: Literal["normal", "full"] = "full"

    _d = field_validator("retention_raw_s", "retention_1m_s", "retention_1h_s", mode="before")(
        parse_duration
    )


class ArchiveSettings(_Section):
    """The cold tier. Empty ``url``: data past the warm retention is dropped, not archived."""

    url: str = ""  # file:///var/lib/sysmonstm/archive or s3://bucket/prefix
    s3_endpoint_url: str | None = None  # any S3-compatible endpoint (MinIO, Ceph, moto ...)
    s3_region: str | None = None


class TlsSettings(_Section):
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None  # server: require client certs signed by it (mTLS); client: trust it


class AggregatorSettings(_Section):
    listen: str = "127.0.0.1:50051"
    tls: TlsSettings = TlsSettings()
    max_message_bytes: int = 4 * 1024 * 1024
    queue_batches: int = 256
    flush_samples: int = 50_000
    flush_age_s: float = 0.02
    max_series_per_source: int = 10_000
    max_future_s: float = 300.0
    max_past_s: float = 7 * 86400.0
    # a metrics stream is acked at most this often while fewer than 8 batches wait (0: at
    # once); an ack costs a 1 Hz collector more CPU than a sample (docs/metrics.md)
    metrics_ack_every_s: float = Field(default=5.0, ge=0)

    _d = field_validator(
        "flush_age_s", "max_future_s", "max_past_s", "metrics_ack_every_s", mode="before"
    )(parse_duration)


class CollectorSettings(_Section):
    aggregators: list[str] = Field(default_factory=lambda: ["127.0.0.1:50051"])
    interval_s: float = 1.0
    spool_dir: Path | None = None  # default: <data_dir>/spool/metrics
    spool_max_bytes: int = 100 * 1024 * 1024
    machine_id: str | None = None
    hostname: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    tls: TlsSettings = TlsSettings()
    # samples per message: more costs less CPU, delays live views and holds the samples of an
    # unsent message in memory only (docs/metrics.md, "Cost")
    batch_frames: int = Field(default=1, ge=1, le=3600)

    _d = field_validator("interval_s", mode="before")(parse_duration)

    @field_validator("interval_s")
    @classmethod
    def _interval_floor(cls, value: float) -> float:
        if value < 0.1:
            raise ValueError("interval_s must be at least 0.1")
        return value


class TaskRule(_Section):
    """Map a workspace name (a shell glob, case-sensitive) to a task."""

    workspace: str
    task: str


class DeskmeterSettings(_Section):
    """The Deskmeter watcher (``sysmonstm deskmeter watch``) and its aggregator side."""

    aggregators: list[str] = Field(default_factory=lambda: ["127.0.0.1:50051"])
    gateway: str = "http://127.0.0.1:8080"  # where task changes and focus alerts come from
    heartbeat_s: float = 10.0
    idle_after_s: float = 300.0
    poll_s: float = 2.0  # the wmctrl fallback's period, where X events are not available
    spool_dir: Path | None = None  # default: <data_dir>/spool/deskmeter
    spool_max_bytes: int = 20 * 1024 * 1024
    machine_id: str | None = None
    hostname: str | None = None
    time_zone: str | None = None  # IANA name; default: the machine's local zone
    task_rules: list[TaskRule] = Field(default_factory=list)
    notify: bool = True  # focus alerts as desktop notifications (freedesktop, D-Bus)
    tls: TlsSettings = TlsSettings()

    _d = field_validator("heartbeat_s", "idle_after_s", "poll_s", mode="before")(parse_duration)

    @field_validator("heartbeat_s", "poll_s")
    @classmethod
    def _period_floor(cls, value: float) -> float:
        if value < 0.1:
            raise ValueError("periods must be at least 0.1 s")
        return value


class StripeSettings(_Section):
    listen: str = "127.0.0.1:8201"  # where Stripe's webhooks are received
    webhook_secrets: list[SecretStr] = Field(default_factory=list)  # several while rotating
    tolerance_s: float = 300.0


class PaypalSettings(_Section):
    listen: str = "127.0.0.1:8202"
    webhook_id: str = ""
    # the signing certificate is fetched only from these hosts (https), then cached
    allowed_cert_hosts: list[str] = Field(
        default_factory=lambda: ["api.paypal.com", "api.sandbox.paypal.com"]
    )
    cert_ca: Path | None = None  # trust for fetching it (default: the system's store)


class BankSettings(_Section):
    listen: str = "127.0.0.1:8203"  # the JSON feed
    watch_dir: Path | None = None  # camt.053 / camt.054 files dropped here are read once
    api_token: SecretStr | None = None  # bearer token the bank's JSON pushes must carry


class PaymentsSettings(_Section):
    """The payment hub (aggregator side, gateway API) and its adapters."""

    hub: list[str] = Field(default_factory=lambda: ["127.0.0.1:50051"])  # adapters send here
    base_currency: str = "USD"
    # units of the base currency per unit of each currency (major units), e.g. EUR = 1.08
    rates: dict[str, float] = Field(default_factory=lambda: {"USD": 1.0})
    card_key: SecretStr | None = None  # HMAC key of card fingerprints
    card_key_file: Path | None = None
    pii_key: SecretStr | None = None  # AES-256-GCM key (base64, 32 bytes) for personal fields
    pii_key_file: Path | None = None
    tokens_file: Path | None = None  # API tokens: TOML [[token]] sha256, user, role
    risk_rules: Path | None = None  # risk rule set (TOML); default: the shipped one
    spool_dir: Path | None = None  # default: <data_dir>/spool/payments
    stripe: StripeSettings = StripeSettings()
    paypal: PaypalSettings = PaypalSettings()
    bank: BankSettings = BankSettings()
    tls: TlsSettings = TlsSettings()


class GatewaySettings(_Section):
    listen: str = "127.0.0.1:8080"


class RulesSettings(_Section):
    files: list[Path] = Field(default_factory=list)
    defaults: bool = True  # load each domain's shipped rules too


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    """Everything a sysmonstm process can be told. See ``sysmonstm config show``."""

    model_config = SettingsConfigDict(
        env_prefix="SYSMONSTM_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    bus: BusSettings = BusSettings()
    hot: HotSettings = HotSettings()
    warm: WarmSettings = WarmSettings()
    archive: ArchiveSettings = ArchiveSettings()
    aggregator: AggregatorSettings = AggregatorSettings()
    collector: CollectorSettings = CollectorSettings()
    deskmeter: DeskmeterSettings = DeskmeterSettings()
    payments: PaymentsSettings = PaymentsSettings()
    gateway: GatewaySettings = GatewaySettings()
    rules: RulesSettings = RulesSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.warm.url:
            object.__setattr__(
                self,
                "warm",
                self.warm.model_copy(update={"url": f"sqlite:///{self.data_dir / 'warm.db'}"}),
            )
        if self.collector.spool_dir is None:
            object.__setattr__(
                self,
                "collector",
                self.collector.model_copy(
                    update={"spool_dir": self.data_dir / "spool" / "metrics"}
                ),
            )
        if self.payments.spool_dir is None:
            object.__setattr__(
                self,
                "payments",
                self.payments.model_copy(
                    update={"spool_dir": self.data_dir / "spool" / "payments"}
                ),
            )
        if self.deskmeter.spool_dir is None:
            object.__setattr__(
                self,
                "deskmeter",
                self.deskmeter.model_copy(
                    update={"spool_dir": self.data_dir / "spool" / "deskmeter"}
                ),
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=default_config_file())
        return (init_settings, env_settings, toml, file_secret_settings)


def load_settings(
    overrides: dict[str, Any] | None = None, config_file: Path | None = None
) -> Settings:
    """Settings from every source; ``overrides`` (nested dicts) win, as command-line flags do.

    Raises ``ConfigError`` with pydantic's field-by-field explanation when something is off.
    """
    from pydantic import ValidationError

    from sysmonstm.errors import ConfigError

    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        os.environ["SYSMONSTM_CONFIG"] = str(config_file)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid settings:\n{exc}") from exc


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f" {k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps("" if value is None else str(value))


def dump_toml(model: BaseModel, prefix: str = "") -> str:
    """Settings as TOML that ``load_settings`` reads back (unset values are left out)."""
    scalars, sections = [], []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            sections.append((name, value))
        elif value is not None:
            dumped = value if not isinstance(value, Path) else str(value)
            if isinstance(value, list):
                dumped = [str(v) if isinstance(v, Path) else v for v in value]
            scalars.append(f"{name} = {_toml_value(dumped)}")
    out = "\n".join(scalars) + ("\n" if scalars else "")
    for name, section in sections:
        out += f"\n[{prefix}{name}]\n" + dump_toml(section, f"{prefix}{name}.")
    return out
