"""Topics are dot-separated tokens; patterns use NATS semantics (`*` one token, `>` the rest)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sysmonstm.errors import InvalidInputError

_BAD_TOKEN_CHARS = re.compile(r"[\s.*>]")
_MAX_TOPIC_LEN = 512


def topic_token(text: str) -> str:
    """Make ``text`` safe as one topic token (dots, wildcards and spaces become ``_``)."""
    token = _BAD_TOKEN_CHARS.sub("_", text)
    return token or "_"


def validate_topic(topic: str) -> str:
    """Return ``topic`` if it is a concrete topic (no wildcards, no empty tokens)."""
    if not topic or len(topic) > _MAX_TOPIC_LEN:
        raise InvalidInputError(f"topic must be 1..{_MAX_TOPIC_LEN} characters")
    for token in topic.split("."):
        if not token or _BAD_TOKEN_CHARS.search(token):
            raise InvalidInputError(
                f"topic {topic!r}: tokens must be non-empty and hold no spaces, '*' or '>'"
            )
    return topic


@dataclass(frozen=True, slots=True)
class TopicPattern:
    """A compiled subscription pattern such as ``metrics.*`` or ``alerts.>``."""

    text: str
    tokens: tuple[str, ...]
    tail: bool  # ends in ">": matches one or more further tokens

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        """Compile ``text``; ``>`` may only be the last token, ``*`` must stand alone."""
        if not text or len(text) > _MAX_TOPIC_LEN:
            raise InvalidInputError(f"pattern must be 1..{_MAX_TOPIC_LEN} characters")
        tokens = text.split(".")
        for i, token in enumerate(tokens):
            if token in ("*", ">"):
                if token == ">" and i != len(tokens) - 1:  # noqa: S105 - a wildcard, no secret
                    raise InvalidInputError(f"pattern {text!r}: '>' must be the last token")
                continue
            if not token or _BAD_TOKEN_CHARS.search(token):
                raise InvalidInputError(
                    f"pattern {text!r}: tokens must be non-empty, '*', '>' or plain words"
                )
        tail = tokens[-1] == ">"
        return cls(text=text, tokens=tuple(tokens[:-1] if tail else tokens), tail=tail)

    def matches(self, topic: str) -> bool:
        """Whether the concrete ``topic`` falls under this pattern."""
        parts = topic.split(".")
        n = len(self.tokens)
        if self.tail:
            if len(parts) <= n:
                return False
        elif len(parts) != n:
            return False
        return all(want in ("*", got) for want, got in zip(self.tokens, parts, strict=False))
