"""Keep secrets out of logs, errors and printed settings: the one place that knows where a
URL carries a password (its user info, or a ``password=`` query parameter)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_PASSWORD_PARAM = re.compile(r"(?<=[?&]password=)[^&#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it replaced by ``***@`` and
    the value of every ``password=`` parameter by ``***``."""
    return _PASSWORD_PARAM.sub(MASK, _USERINFO.sub(f"{MASK}@", text))


def redact_url(url: str) -> str:
    """One URL fit to name a backend: the user name kept, the password of its user info and
    of any ``password=`` parameter masked (``<unparsable URL>`` if it cannot be read)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostinfo}" if colon else netloc
    query = parts.query
    if "password" in query.lower():
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() == "password" else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The passwords written in ``url``, to scrub them from messages that quote them."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    except ValueError:
        return []
    return [s for s in found if s]
