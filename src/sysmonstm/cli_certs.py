"""``sysmonstm certs``: a private CA and certificates for mutual TLS between the services.

Thin, like the rest of the CLI: the work is in ``sysmonstm.certs`` (imported lazily, so the
other commands do not pay for loading ``cryptography``). It prints what it wrote (paths,
subjects, names, expiry, fingerprints), never a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from sysmonstm.errors import ConfigError

if TYPE_CHECKING:
    from sysmonstm.certs import Issued, PemFile

certs_app = typer.Typer(
    no_args_is_help=True,
    help="Make a private CA and the TLS certificates for mutual TLS (keys are written 0600).",
)
_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

OutDir = Annotated[Path, typer.Option("--out", help="Directory to write the files into.")]
Force = Annotated[bool, typer.Option("--force", help="Replace files that exist already.")]
CaDir = Annotated[
    Path | None,
    typer.Option("--ca", help="Directory holding ca.pem and ca.key [default: --out]."),
]
Days = Annotated[int, typer.Option(min=1, help="Days the certificate is valid.")]


def _fail(exc: ConfigError) -> typer.Exit:
    _err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


def _split(values: list[str] | None) -> list[str]:
    """``--server a,b --server c,a`` → ``[a, b, c]``."""
    names = [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
    return list(dict.fromkeys(names))


def _report(what: str, issued: Issued, files: list[PemFile]) -> None:
    from sysmonstm.certs import alt_names, fingerprint

    cert = issued.cert
    names = ", ".join(alt_names(cert)) or "-"
    _out.print(f"[bold]{what}[/bold] {cert.subject.rfc4514_string()}")
    _out.print(f"  names:       {names}")
    _out.print(f"  valid until: {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    _out.print(f"  sha256:      {fingerprint(cert)}")
    for f in files:
        mode = "0600, keep it secret" if f.secret else "0644"
        _out.print(f"  wrote {f.path} ({mode})")


def _issue_to(
    out: Path,
    ca_dir: Path | None,
    name: str,
    kind_name: str,
    sans: list[str],
    days: int,
    force: bool,
) -> None:
    from sysmonstm.certs import Kind, bundle, issue, leaf_files, load_ca, write_files

    kind = Kind(kind_name)
    try:
        ca = load_ca(ca_dir or out)
        issued = issue(ca, name, kind, sans, days)
        files = bundle(issued, *leaf_files(out, kind, name))
        write_files(files, force=force)
    except ConfigError as exc:
        raise _fail(exc) from exc
    _report(f"{kind.value} certificate", issued, files)


@certs_app.command("ca")
def ca(
    out: OutDir,
    name: Annotated[str, typer.Option(help="Common name of the CA.")] = "sysmonstm CA",
    days: Days = 3650,
    force: Force = False,
) -> None:
    """Make a CA (ca.pem, ca.key). Keep ca.key off the servers: it signs every certificate."""
    from sysmonstm.certs import bundle, ca_files, new_ca, write_files

    try:
        issued = new_ca(name, days)
        files = bundle(issued, *ca_files(out))
        write_files(files, force=force)
    except ConfigError as exc:
        raise _fail(exc) from exc
    _report("CA", issued, files)
    if force:
        _out.print("[yellow]certificates signed by a replaced CA are no longer trusted[/yellow]")


@certs_app.command("server")
def server(
    name: Annotated[str, typer.Argument(help="Host name (or IP) clients dial; a SAN too.")],
    out: OutDir,
    san: Annotated[
        list[str] | None, typer.Option("--san", help="Another DNS name or IP; repeatable.")
    ] = None,
    ca_dir: CaDir = None,
    days: Days = 825,
    force: Force = False,
) -> None:
    """Make a server certificate (server-NAME.pem/.key) for an aggregator."""
    _issue_to(out, ca_dir, name, "server", san or [], days, force)


@certs_app.command("client")
def client(
    name: Annotated[str, typer.Argument(help="Name of the client (its certificate's CN).")],
    out: OutDir,
    ca_dir: CaDir = None,
    days: Days = 825,
    force: Force = False,
) -> None:
    """Make a client certificate (client-NAME.pem/.key) for a collector."""
    _issue_to(out, ca_dir, name, "client", [], days, force)


@certs_app.command("dev")
def dev(
    out: OutDir,
    server: Annotated[
        list[str] | None,
        typer.Option("--server", help="Server names, comma-separated or repeated."),
    ] = None,
    client: Annotated[
        list[str] | None,
        typer.Option("--client", help="Client names, comma-separated or repeated."),
    ] = None,
    san: Annotated[
        list[str] | None,
        typer.Option("--san", help="Extra DNS name or IP for every server certificate."),
    ] = None,
    days: Days = 825,
    force: Force = False,
) -> None:
    """Make a whole set at once: a new CA plus server and client certificates signed by it.

    Nothing is written if any of the files exists (unless --force).
    """
    from sysmonstm.certs import Kind, bundle, ca_files, issue, leaf_files, new_ca, write_files

    servers, clients = _split(server), _split(client)
    if not servers and not clients:
        _err.print("[red]error:[/red] name at least one --server or --client")
        raise typer.Exit(2)
    try:
        ca = new_ca(days=max(days, 3650))
        made = [("CA", ca, bundle(ca, *ca_files(out)))]
        for kind, names in ((Kind.SERVER, servers), (Kind.CLIENT, clients)):
            for name in names:
                sans = (san or []) if kind is Kind.SERVER else []
                issued = issue(ca, name, kind, sans, days)
                paths = leaf_files(out, kind, name)
                made.append((f"{kind.value} certificate", issued, bundle(issued, *paths)))
        write_files([f for *_, files in made for f in files], force=force)
    except ConfigError as exc:
        raise _fail(exc) from exc
    for what, issued, files in made:
        _report(what, issued, files)
