"""API tokens and roles: the tokens file, bearer checks (401/403 with the JSON error shape),
reloading after ``sysmonstm payments token add``, and no token ever in a log line."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sysmonstm.config import load_settings
from sysmonstm.domains.payments.auth import TokenBook
from sysmonstm.domains.payments.cli_tokens import append_token
from sysmonstm.domains.payments.domain import DOMAIN as PAYMENTS
from sysmonstm.domains.payments.tokens import Principal, Role, parse_tokens, token_hash
from sysmonstm.errors import ConfigError
from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from tests.e2e.processes import SYSMONSTM

TOKEN = "tok-analyst-abcdef"  # noqa: S105 - a test token


def entry(token: str, user: str, role: str) -> str:
    return f'[[token]]\nsha256 = "{token_hash(token)}"\nuser = "{user}"\nrole = "{role}"\n'


def test_tokens_file_maps_a_token_hash_to_its_user_and_role(tmp_path: Path) -> None:
    """Only the hash is in the file; the token finds its entry, others find none."""
    path = tmp_path / "tokens.toml"
    path.write_text(entry(TOKEN, "ann", "analyst") + entry("tok-admin", "root", "admin"))
    book = TokenBook(path)
    assert TOKEN not in path.read_text()
    assert book.lookup(TOKEN) == Principal("ann", Role.ANALYST)
    assert book.lookup("tok-admin") == Principal("root", Role.ADMIN)
    assert book.lookup("tok-analyst-abcdeg") is None
    assert book.lookup("") is None
    assert TokenBook(None).lookup(TOKEN) is None


def test_a_changed_tokens_file_is_read_again(tmp_path: Path) -> None:
    """A token appended after the first lookup works without a restart."""
    path = tmp_path / "tokens.toml"
    path.write_text(entry(TOKEN, "ann", "analyst"))
    book = TokenBook(path)
    assert book.lookup("tok-new") is None
    append_token(path, "neo", Role.VIEWER, "tok-new")
    assert book.lookup("tok-new") == Principal("neo", Role.VIEWER)
    assert book.lookup(TOKEN) == Principal("ann", Role.ANALYST)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[token]]\nsha256 = 'abc'\nuser = 'u'\nrole = 'viewer'\n", "token 1: sha256"),
        (entry("t", "u", "viewer") + entry("t2", "u2", "boss"), "token 2: role 'boss'"),
        (entry("t", "bad user", "viewer"), "token 1: user"),
        (entry("t", "u", "viewer") + "token_extra = 1\n", "token 1: needs exactly"),
        ("[owner]\nname = 'x'\n", "only [[token]] tables"),
        ("[[token]\n", "not TOML"),
    ],
    ids=["short-hash", "unknown-role", "bad-user", "extra-key", "other-table", "not-toml"],
)
def test_a_broken_tokens_file_is_refused_naming_the_entry(text: str, says: str) -> None:
    """A mistake names the file and the entry it is in."""
    with pytest.raises(ConfigError, match=r"tokens\.toml") as info:
        parse_tokens(text, "tokens.toml")
    assert says in str(info.value)


@pytest.fixture
def tokens_path(data_dir: Path) -> Path:
    path = data_dir / "tokens.toml"
    path.write_text(entry(TOKEN, "ann", "analyst") + entry("tok-viewer", "vic", "viewer"))
    return path


async def _client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


@pytest.fixture
async def client(data_dir: Path, tokens_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        {"data_dir": str(data_dir), "payments": {"tokens_file": str(tokens_path)}}
    )
    core = await Core.open(settings, [PAYMENTS])
    try:
        async for c in _client(core):
            yield c
    finally:
        await core.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}, bearer("tok-nope")],
    ids=["none", "basic", "empty", "unknown"],
)
async def test_no_token_or_a_bad_one_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """401 with ``WWW-Authenticate: Bearer`` and the JSON error shape; no data."""
    response = await client.get("/api/v1/payments/transactions", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert set(response.json()) == {"error"}


async def test_a_role_too_low_is_403_naming_what_it_needs(client: httpx.AsyncClient) -> None:
    """A viewer may read transactions but not the audit trail."""
    ok = await client.get("/api/v1/payments/me", headers=bearer("tok-viewer"))
    assert ok.json() == {"user": "vic", "role": "viewer"}
    response = await client.get("/api/v1/payments/audit", headers=bearer("tok-viewer"))
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "forbidden",
            "message": "vic (viewer) may not read the audit trail (needs admin, auditor)",
        }
    }


async def test_without_a_tokens_file_every_request_is_401(data_dir: Path) -> None:
    """No ``payments.tokens_file``: the API is closed, and says how to open it."""
    core = await Core.open(load_settings({"data_dir": str(data_dir)}), [PAYMENTS])
    try:
        async for c in _client(core):
            response = await c.get("/api/v1/payments/me", headers=bearer(TOKEN))
            assert response.status_code == 401
            assert "payments.tokens_file" in response.json()["error"]["message"]
    finally:
        await core.close()


async def test_an_unreadable_tokens_file_is_503_and_serving_resumes_once_fixed(
    client: httpx.AsyncClient, tokens_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken file refuses every request (503) without echoing the token; fixed, it serves."""
    good = await asyncio.to_thread(tokens_path.read_text)
    await asyncio.to_thread(tokens_path.write_text, good + "role = 'x'\n[[token]\n")
    with caplog.at_level(logging.DEBUG):
        response = await client.get("/api/v1/payments/me", headers=bearer(TOKEN))
    assert response.status_code == 503
    assert TOKEN not in response.text
    assert TOKEN not in caplog.text
    await asyncio.to_thread(tokens_path.write_text, good)
    fixed = await client.get("/api/v1/payments/me", headers=bearer(TOKEN))
    assert fixed.json() == {"user": "ann", "role": "analyst"}


async def test_tokens_never_reach_a_log_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused and accepted requests alike log no token."""
    with caplog.at_level(logging.DEBUG):
        for token in (TOKEN, "tok-wrong-secret"):
            await client.get("/api/v1/payments/audit", headers=bearer(token))
    out = capsys.readouterr()
    for token in (TOKEN, "tok-wrong-secret"):
        assert token not in caplog.text
        assert token not in out.out + out.err


def run_cli(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMONSTM_")}
    if env_file is not None:
        env["SYSMONSTM_PAYMENTS__TOKENS_FILE"] = str(env_file)
    return subprocess.run(
        [SYSMONSTM, "payments", "token", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_token_add_prints_a_token_once_that_the_running_gateway_accepts(
    client: httpx.AsyncClient, tokens_path: Path
) -> None:
    """``token add`` prints one new token, stores only its hash (file mode 0600 when it
    makes the file), and the gateway already serving takes it."""
    done = await asyncio.to_thread(
        run_cli, "add", "--user", "ada", "--role", "auditor", env_file=tokens_path
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert len(token.splitlines()) == 1
    assert token.startswith("smp_")
    stored = await asyncio.to_thread(tokens_path.read_text)
    assert token not in stored
    assert token_hash(token) in stored
    response = await client.get("/api/v1/payments/audit/verify", headers=bearer(token))
    assert response.status_code == 200, response.text
    me = await client.get("/api/v1/payments/me", headers=bearer(token))
    assert me.json() == {"user": "ada", "role": "auditor"}


def test_token_add_makes_a_private_file_and_list_shows_no_token(tmp_path: Path) -> None:
    """A tokens file ``token add`` creates is 0600; ``token list`` shows user, role, hash
    prefix, never the token."""
    fresh = tmp_path / "fresh.toml"
    made = run_cli("add", "--user", "bo", "--role", "viewer", "--file", str(fresh))
    assert made.returncode == 0, made.stderr
    assert fresh.stat().st_mode & 0o777 == 0o600
    listed = run_cli("list", "--file", str(fresh))
    token = made.stdout.strip()
    assert listed.stdout.split()[:3] == ["bo", "viewer", token_hash(token)[:12] + "…"]
    assert token not in listed.stdout


def test_token_add_refuses_a_bad_user_or_role_and_writes_nothing(tokens_path: Path) -> None:
    """A user with spaces or an unknown role is refused; the file stays as it was."""
    before = tokens_path.read_text()
    bad_user = run_cli("add", "--user", "a b", "--role", "viewer", env_file=tokens_path)
    assert bad_user.returncode != 0
    assert "user" in bad_user.stderr
    bad_role = run_cli("add", "--user", "ab", "--role", "boss", env_file=tokens_path)
    assert bad_role.returncode != 0
    assert tokens_path.read_text() == before
    missing = run_cli("add", "--user", "ab", "--role", "viewer")
    assert missing.returncode == 2
    assert "tokens_file" in missing.stderr
