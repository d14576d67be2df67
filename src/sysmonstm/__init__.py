"""sysmonstm: one streaming core for telemetry, payments and workspace tracking."""

__version__ = "0.1.0"
