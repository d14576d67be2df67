"""``sysmonstm payments token add|list``: API tokens for the gateway's payment API.

``add`` makes a random token, prints it once (it is stored nowhere: only its SHA-256 goes
into ``payments.tokens_file``, or ``--file``), and appends the entry; the gateway picks it
up without a restart. ``list`` shows users, roles and hash prefixes, never a token.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from sysmonstm.cli_payments import payments_app
from sysmonstm.domains.payments.tokens import USER, USER_RULE, Role, parse_tokens, token_hash
from sysmonstm.errors import ConfigError

TOKEN_PREFIX = "smp_"  # noqa: S105 - a prefix, not a secret: tells a leaked token apart
token_app = typer.Typer(no_args_is_help=True, help="API tokens of the payment API.")
payments_app.add_typer(token_app, name="token")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def append_token(path: Path, user: str, role: Role, token: str) -> None:
    """Append ``token``'s entry to the tokens file at ``path`` (created 0600), after checking
    that the file as it stands reads (a broken file is not made worse)."""
    if not USER.fullmatch(user):
        raise ConfigError(f"user {user!r}: must be {USER_RULE}")
    existing = path.read_text() if path.exists() else ""
    parse_tokens(existing, str(path))
    entry = f'[[token]]\nsha256 = "{token_hash(token)}"\nuser = "{user}"\nrole = "{role.value}"\n'
    separator = "" if not existing else "\n" if existing.endswith("\n") else "\n\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(separator + entry)


def _tokens_path(file: Path | None) -> Path:
    from sysmonstm.cli import _settings, err

    path = file or _settings().payments.tokens_file
    if path is None:
        err.print(
            "[red]error:[/red] no tokens file: set payments.tokens_file "
            "(SYSMONSTM_PAYMENTS__TOKENS_FILE) or pass --file"
        )
        raise typer.Exit(2)
    return path


FileOption = Annotated[
    Path | None, typer.Option("--file", help="Tokens file (default: payments.tokens_file).")
]


@token_app.command("add")
def token_add(
    user: Annotated[str, typer.Option(help=f"Who the token is for ({USER_RULE}).")],
    role: Annotated[Role, typer.Option(help="viewer, analyst, auditor or admin.")],
    file: FileOption = None,
) -> None:
    """Make a token for USER with ROLE; print it once (only its hash is kept)."""
    from sysmonstm.cli import err

    path = _tokens_path(file)
    token = new_token()
    try:
        append_token(path, user, role, token)
    except (ConfigError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    err.print(f"token for {user} ({role.value}) added to {path}; it is shown only now:")
    print(token)


@token_app.command("list")
def token_list(file: FileOption = None) -> None:
    """Users, roles and hash prefixes of the tokens file (never a token)."""
    from sysmonstm.cli import err, out

    path = _tokens_path(file)
    try:
        entries = parse_tokens(path.read_text(), str(path))
    except (ConfigError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for e in entries:
        out.print(f"{e.principal.user}\t{e.principal.role.value}\t{e.sha256.hex()[:12]}…")
