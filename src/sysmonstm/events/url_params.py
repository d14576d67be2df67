"""Query parameters of a bus URL, read one by one: each error is a ``ConfigError`` naming the
parameter, and a parameter nobody read is an error too (a typo never passes silently)."""

from __future__ import annotations

from urllib.parse import parse_qs

from sysmonstm.config import parse_duration
from sysmonstm.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _seconds(value: float) -> str:
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


class UrlParams:
    """The parameters of ``query``; each may be given once."""

    def __init__(self, query: str) -> None:
        try:
            parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError as exc:
            raise ConfigError(f"bus URL: unreadable query string {query!r}") from exc
        self._left: dict[str, str] = {}
        for key, values in parsed.items():
            if len(values) != 1:
                raise ConfigError(f"bus URL: parameter {key!r} is given {len(values)} times")
            self._left[key] = values[0]

    def names(self) -> list[str]:
        """The parameters not read yet, in the order given."""
        return list(self._left)

    def raw(self, key: str) -> str | None:
        """The value as given (``""`` for ``key=``), or ``None`` when absent."""
        return self._left.pop(key, None)

    def text(self, key: str, default: str | None) -> str | None:
        """The value, or ``default`` when absent or empty."""
        value = self._left.pop(key, None)
        return default if value is None or value == "" else value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        raw = self._left.pop(key, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"bus URL: {key}={raw!r} is not an integer") from None
        if not low <= value <= high:
            raise ConfigError(f"bus URL: {key}={value} must be within {low}..{high}")
        return value

    def duration(self, key: str, default: float, low: float = 0.001) -> float:
        """Seconds from a duration like ``90s``, ``5m`` or ``1h`` (``config.parse_duration``)."""
        raw = self._left.pop(key, None)
        if raw is None:
            return default
        try:
            value = parse_duration(raw)
        except ValueError as exc:
            raise ConfigError(f"bus URL: {key}={raw!r}: {exc}") from None
        if value < low:
            raise ConfigError(f"bus URL: {key}={raw!r} must be at least {_seconds(low)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self._left.pop(key, None)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(f"bus URL: {key}={raw!r} must be true or false")

    def finish(self) -> None:
        """Refuse whatever was not read."""
        if self._left:
            names = ", ".join(sorted(self._left))
            raise ConfigError(f"bus URL: unknown parameter(s) {names}")
