"""``sysmonstm payments backtest`` and ``sysmonstm payments lists add|remove|show``.

``backtest`` reads the ledger in the warm tier's database directly (``warm.url``) and replays
its transactions through a draft rule file (``backtest.py``). ``lists`` goes through the
gateway's payment API (``--gateway``, default ``http://<gateway.listen>``; token from
``--token`` or ``SYSMONSTM_TOKEN``; changing needs the admin role), or with ``--direct``
straight to the ledger, audited as the local user.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from sysmonstm.cli_payments import payments_app
from sysmonstm.domains.payments.model import ListEntry, ListKind, ListMode

if TYPE_CHECKING:
    from sysmonstm.config import Settings
    from sysmonstm.domains.payments.backtest import Report
    from sysmonstm.domains.payments.ledger_sql import SqlLedger

T = TypeVar("T")
API = "/api/v1/payments"
lists_app = typer.Typer(no_args_is_help=True, help="Allow and block lists (card, email, ip...).")
payments_app.add_typer(lists_app, name="lists")

GatewayOpt = Annotated[
    str | None, typer.Option("--gateway", help="Gateway URL (default: http://<gateway.listen>).")
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="SYSMONSTM_TOKEN", help="API token (env SYSMONSTM_TOKEN)."),
]
DirectOpt = Annotated[
    bool, typer.Option("--direct", help="Change the ledger directly instead of via the API.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


class CommandError(Exception):
    """Ends a command with this message and status 1."""


def parse_time(text: str) -> int:
    """Unix ms of an ISO 8601 date or date-time (UTC unless it names a zone), or ``now``."""
    if text.strip().lower() == "now":
        return time.time_ns() // 1_000_000
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-01-31T12:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    from rich.markup import escape

    from sysmonstm.cli import err
    from sysmonstm.errors import SysmonstmError

    try:
        return asyncio.run(work())
    except (CommandError, SysmonstmError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from exc


async def _open_ledger(settings: Settings) -> SqlLedger:
    from sysmonstm.domains.payments.ledgers import open_ledger
    from sysmonstm.domains.payments.pii import cipher_for

    ledger = open_ledger(settings.warm.url, cipher_for(settings.payments))
    await ledger.open()
    return ledger


def _print_json(body: Any) -> None:
    print(json.dumps(body, indent=2, ensure_ascii=False))


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _show_report(report: Report) -> None:
    from rich.table import Table

    from sysmonstm.cli import out

    table = Table(
        "time (UTC)",
        "event",
        "amount",
        "before",
        "after",
        "draft's reasons",
        title=f"{report.ruleset}: {len(report.changes)} of {report.replayed} decisions change",
    )
    for change in report.changes:
        tx = change.tx
        table.add_row(
            _when(tx.time_ms),
            tx.event_id,
            f"{tx.amount_minor} {tx.currency} (minor)",
            f"{change.before.action.label} ({', '.join(h.rule for h in change.before.hits)})",
            change.after.action.label,
            "\n".join(f"{h.rule}: {h.reason}" for h in change.after.hits) or "-",
        )
    out.print(table)
    for pair, count in report.transitions().items():
        out.print(f"{pair}: {count}", highlight=False)


@payments_app.command("backtest")
def backtest_command(
    rules: Annotated[str, typer.Option("--rules", help="The draft rule file (TOML).")],
    from_: Annotated[str, typer.Option("--from", help="Start (ISO 8601, UTC by default).")],
    to: Annotated[str, typer.Option("--to", help="End, exclusive (ISO 8601 or now).")] = "now",
    as_json: JsonOpt = False,
) -> None:
    """Replay stored transactions through a draft rule set; show the decisions that change."""
    from rich.progress import Progress

    from sysmonstm.cli import _settings
    from sysmonstm.domains.payments.backtest import backtest
    from sysmonstm.domains.payments.risk_rules import load_ruleset

    settings = _settings()

    async def work() -> Report:
        draft = load_ruleset(rules)
        start, end = parse_time(from_), parse_time(to)
        if end <= start:
            raise CommandError("--to must be after --from")
        ledger = await _open_ledger(settings)
        try:
            with Progress(transient=True, disable=as_json) as bar:
                task = bar.add_task("replaying", total=None)
                return await backtest(
                    ledger, draft, start, end, progress=lambda n: bar.update(task, completed=n)
                )
        finally:
            await ledger.close()

    report = _run(work)
    if as_json:
        _print_json(report.to_json())
    else:
        _show_report(report)


# -- lists -------------------------------------------------------------------------------------


async def _api(
    settings: Settings, gateway: str | None, token: str | None, method: str, **kwargs: Any
) -> Any:
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the answer is the output
    base = (gateway or f"http://{settings.gateway.listen}").rstrip("/") + API
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30.0, headers=headers) as client:
            response = await client.request(method, "/lists", **kwargs)
    except httpx.HTTPError as exc:
        raise CommandError(f"cannot reach {base}: {exc or type(exc).__name__}") from exc
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300] or response.reason_phrase
        raise CommandError(f"{message} (HTTP {response.status_code})")
    return response.json()


ModeArg = Annotated[ListMode, typer.Argument(help="allow or block.")]
KindArg = Annotated[ListKind, typer.Argument(help="card, email, ip, country or bin.")]
ValueArg = Annotated[str, typer.Argument(help="The value (normalised before it is stored).")]


@lists_app.command("add")
def lists_add(
    mode: ModeArg,
    kind: KindArg,
    value: ValueArg,
    note: Annotated[str, typer.Option("--note", help="Why.")] = "",
    gateway: GatewayOpt = None,
    token: TokenOpt = None,
    direct: DirectOpt = False,
) -> None:
    """Put a value on the allow or block list."""
    from sysmonstm.cli import _settings, out
    from sysmonstm.domains.payments.lists import add_entry
    from sysmonstm.domains.payments.masking import list_entry

    settings = _settings()

    async def work() -> dict[str, Any]:
        if not direct:
            body = {"mode": mode.value, "kind": kind.value, "value": value, "note": note}
            answer: dict[str, Any] = await _api(settings, gateway, token, "PUT", json=body)
            return answer
        user = getpass.getuser()
        ledger = await _open_ledger(settings)
        try:
            entry = ListEntry(mode, kind, value, note, user, time.time_ns() // 1_000_000)
            return list_entry(await add_entry(ledger, entry, user))
        finally:
            await ledger.close()

    stored = _run(work)
    shown = f"{stored['kind']} {stored['value']} is on the {stored['mode']} list"
    out.print(shown, highlight=False)


@lists_app.command("remove")
def lists_remove(
    mode: ModeArg,
    kind: KindArg,
    value: ValueArg,
    gateway: GatewayOpt = None,
    token: TokenOpt = None,
    direct: DirectOpt = False,
) -> None:
    """Take a value off the allow or block list (status 1 if it was not on it)."""
    from sysmonstm.cli import _settings, out
    from sysmonstm.domains.payments.lists import normalize, remove_entry

    settings = _settings()

    async def work() -> str:
        if not direct:
            params = {"mode": mode.value, "kind": kind.value, "value": value}
            answer = await _api(settings, gateway, token, "DELETE", params=params)
            return str(answer["removed"]["value"])
        ledger = await _open_ledger(settings)
        try:
            if not await remove_entry(ledger, mode, kind, value, getpass.getuser()):
                raise CommandError(f"the {mode.value} list holds no {kind.value} {value!r}")
        finally:
            await ledger.close()
        return normalize(kind, value)

    removed = _run(work)
    out.print(f"{kind.value} {removed} is off the {mode.value} list", highlight=False)


@lists_app.command("show")
def lists_show(
    gateway: GatewayOpt = None,
    token: TokenOpt = None,
    direct: DirectOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show both lists."""
    from rich.table import Table

    from sysmonstm.cli import _settings, out
    from sysmonstm.domains.payments.masking import list_entry

    settings = _settings()

    async def work() -> list[dict[str, Any]]:
        if not direct:
            answer = await _api(settings, gateway, token, "GET")
            return list(answer["entries"])
        ledger = await _open_ledger(settings)
        try:
            return [list_entry(e) for e in await ledger.list_entries()]
        finally:
            await ledger.close()

    entries = _run(work)
    if as_json:
        _print_json({"entries": entries})
        return
    table = Table("mode", "kind", "value", "note", "added by", "added (UTC)")
    for e in entries:
        table.add_row(
            e["mode"], e["kind"], e["value"], e["note"], e["added_by"], _when(e["added_ms"])
        )
    out.print(table)
