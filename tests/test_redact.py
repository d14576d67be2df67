"""Secrets in URLs never reach logs, errors or printed settings."""

from __future__ import annotations

from sysmonstm.redact import redact, redact_url, url_secrets


def test_redact_url_hides_passwords_in_user_info_and_parameters() -> None:
    assert redact_url("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact_url("postgresql://u@h/d?password=pw&sslmode=require") == (
        "postgresql://u@h/d?password=%2A%2A%2A&sslmode=require"
    )
    assert redact_url("postgresql://h/d") == "postgresql://h/d"


def test_redact_hides_the_user_info_and_password_parameters_of_every_url_in_a_text() -> None:
    text = "warm postgresql://u:pw@h/d?sslmode=require&password=p2 and redis://:r3@h:6379/0"
    assert redact(text) == (
        "warm postgresql://***@h/d?sslmode=require&password=*** and redis://***@h:6379/0"
    )
    assert redact("nats://127.0.0.1:4222 is down") == "nats://127.0.0.1:4222 is down"


def test_url_secrets_lists_the_passwords_to_scrub_from_messages() -> None:
    assert url_secrets("postgresql://u:pw@h/d?password=p2") == ["pw", "p2"]
    assert url_secrets("postgresql://u@h/d") == []
