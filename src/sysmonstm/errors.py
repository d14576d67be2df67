"""The small exception tree every seam converts foreign exceptions into."""


class SysmonstmError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(SysmonstmError):
    """Settings or a declaration file (rules, TOML) cannot be used as written."""


class BackendError(SysmonstmError):
    """A storage or bus backend failed; the operation did not take effect."""


class UnknownBackendError(ConfigError):
    """No backend is registered for a URL's scheme."""


class InvalidInputError(SysmonstmError):
    """Input from outside (a batch, a request) is malformed; nothing of it was applied.

    ``code`` names the kind of refusal in gRPC terms (``INVALID_ARGUMENT`` or
    ``RESOURCE_EXHAUSTED``) so each edge can map it to its own status.
    """

    def __init__(self, reason: str, *, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
