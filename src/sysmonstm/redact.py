"""Keep secrets out of logs, errors and printed settings."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it replaced by ``***@``."""
    return _USERINFO.sub("***@", text)
