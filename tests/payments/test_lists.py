"""Allow and block lists by card fingerprint, e-mail, IP, country and BIN: normalisation,
what they decide, the real ledger, and ``sysmonstm payments lists`` via the gateway or
``--direct``."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.config import load_settings
from sysmonstm.domains.payments.backtest import HistoryView
from sysmonstm.domains.payments.domain import DOMAIN as PAYMENTS
from sysmonstm.domains.payments.lists import ListIndex, add_entry, normalize, remove_entry
from sysmonstm.domains.payments.model import Action, ListEntry, ListKind, ListMode, Transaction
from sysmonstm.domains.payments.resources import ledger as core_ledger
from sysmonstm.domains.payments.risk import load_decider
from sysmonstm.runtime import Core
from tests.deskmeter.query_support import run_cli
from tests.gateway.support import served
from tests.payments.api_fixtures import PII_KEY, TOKENS, write_tokens
from tests.payments.ledger_support import T0, ledger_url, opened_ledger, tx

CARD = "ab" * 32
BLOCK, ALLOW = ListMode.BLOCK, ListMode.ALLOW


@pytest.mark.parametrize(
    ("kind", "typed", "stored"),
    [
        (ListKind.EMAIL, "  Fraud@Example.COM ", "fraud@example.com"),
        (ListKind.COUNTRY, "fr", "FR"),
        (ListKind.BIN, "4242 42-42", "42424242"),
        (ListKind.BIN, "424242", "424242"),
        (ListKind.IP, " 2001:DB8:0:0::1 ", "2001:db8::1"),
        (ListKind.IP, "192.0.2.1", "192.0.2.1"),
        (ListKind.CARD, " " + CARD.upper(), CARD),
    ],
    ids=["email", "country", "bin-8-grouped", "bin-6", "ipv6", "ipv4", "card"],
)
def test_values_are_normalised(kind: ListKind, typed: str, stored: str) -> None:
    """However a value is typed, it is stored as the rules compare it."""
    assert normalize(kind, typed) == stored


@pytest.mark.parametrize(
    ("kind", "typed"),
    [
        (ListKind.EMAIL, "not-an-email"),
        (ListKind.COUNTRY, "FRA"),
        (ListKind.BIN, "42424"),
        (ListKind.BIN, "4242424242"),
        (ListKind.IP, "300.1.1.1"),
        (ListKind.CARD, "short"),
    ],
    ids=["email", "country-alpha3", "bin-short", "bin-long", "ip", "card"],
)
def test_bad_values_are_refused(kind: ListKind, typed: str) -> None:
    """A value its kind cannot hold is a ValueError saying so."""
    with pytest.raises(ValueError, match="is not"):
        normalize(kind, typed)


async def decide(event: Transaction, *entries: ListEntry, history: int = 0) -> Any:
    """``event`` decided by the default rules after ``history`` payments on its card in the
    seconds before it, with ``entries`` listed."""
    view = HistoryView(ListIndex(entries))
    for n in range(history):
        view.add(tx(100 + n, time_ms=event.time_ms - 1000 * (n + 1)))
    view.add(event)
    return await load_decider(clock=lambda: T0)(event, view)


@pytest.mark.parametrize(
    ("kind", "value", "field", "shown"),
    [
        (ListKind.CARD, CARD, "card_fingerprint", CARD[:12] + "…"),
        (ListKind.EMAIL, "PAYER1@example.com", "email", "p***@example.com"),
        (ListKind.IP, "192.0.2.1", "ip", "192.0.2.1"),
        (ListKind.COUNTRY, "us", "country", "US"),
        (ListKind.BIN, "424242", "card_bin", "424242"),
    ],
    ids=["card", "email", "ip", "country", "bin-prefix"],
)
async def test_block_list_blocks_by_each_kind(
    kind: ListKind, value: str, field: str, shown: str
) -> None:
    """A listed value blocks an ordinary payment, explained by the kind and the value."""
    decision = await decide(tx(1), ListEntry(BLOCK, kind, value))
    assert decision.action is Action.BLOCK
    [hit] = decision.hits
    assert (hit.rule, hit.action) == ("block_list", Action.BLOCK)
    assert dict(hit.values) == {"kind": kind.value, "value": shown, "field": field}
    assert hit.reason == f"{field} {shown} is on the block list"


async def test_country_list_checks_ip_and_card_countries() -> None:
    """A blocked country matches the IP's or the card's country too (each looked up once)."""
    entry = ListEntry(BLOCK, ListKind.COUNTRY, "RU")
    by_ip = await decide(tx(1, ip_country="RU"), entry)
    assert by_ip.action is Action.BLOCK
    assert [h.values["field"] for h in by_ip.hits if h.rule == "block_list"] == ["ip_country"]
    by_card = await decide(tx(2, card_country="RU", country="RU", ip_country="RU"), entry)
    assert [h.values["field"] for h in by_card.hits] == ["country"]


async def test_allow_list_short_circuits_every_rule() -> None:
    """An allowed e-mail approves a large 6th payment in a minute from abroad, with only the
    allow-list hit as explanation, even if its card is block-listed."""
    risky = tx(1, amount_minor=5_000_000, amount_base_minor=5_000_000, country="FR")
    assert (await decide(risky, history=5)).action is Action.BLOCK
    decision = await decide(
        risky,
        ListEntry(ALLOW, ListKind.EMAIL, "payer1@EXAMPLE.com"),
        ListEntry(BLOCK, ListKind.CARD, CARD),
        history=5,
    )
    assert decision.action is Action.APPROVE
    assert [(h.rule, h.action, h.values["kind"]) for h in decision.hits] == [
        ("allow_list", Action.APPROVE, "email")
    ]


async def test_value_on_both_lists_counts_as_blocked() -> None:
    """A contradiction resolves to the safe side."""
    both = (ListEntry(ALLOW, ListKind.IP, "192.0.2.1"), ListEntry(BLOCK, ListKind.IP, "192.0.2.1"))
    assert (await decide(tx(1), *both)).action is Action.BLOCK
    assert (await decide(tx(1), *reversed(both))).action is Action.BLOCK


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else None
    return ledger_url(request.param, tmp_path, dsn)


async def test_lists_in_the_real_ledger_decide_recorded_transactions(url: str) -> None:
    """An entry added (normalised) to the ledger blocks the next recorded payment from that
    e-mail; once removed, the next one is approved."""
    async with opened_ledger(url) as ledger:
        entry = ListEntry(BLOCK, ListKind.EMAIL, " Payer1@Example.COM ", "chargebacks")
        stored = await add_entry(ledger, entry, "alice")
        assert stored.value == "payer1@example.com"
        assert [(e.mode, e.kind, e.value) for e in await ledger.list_entries()] == [
            (BLOCK, ListKind.EMAIL, "payer1@example.com")
        ]
        [blocked] = await ledger.record([tx(1)], load_decider(), "test")
        assert blocked.decision.action is Action.BLOCK
        assert [h.rule for h in blocked.decision.hits] == ["block_list"]
        assert await remove_entry(ledger, BLOCK, ListKind.EMAIL, "PAYER1@example.com", "alice")
        assert await ledger.list_entries() == []
        [approved] = await ledger.record(
            [tx(2, email="payer1@example.com")], load_decider(), "test"
        )
        assert approved.decision.action is Action.APPROVE


# -- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    settings = load_settings(
        {
            "data_dir": str(data_dir),
            "payments": {
                "tokens_file": str(write_tokens(data_dir / "tokens.toml")),
                "pii_key": PII_KEY,
            },
        }
    )
    opened = await Core.open(settings, [PAYMENTS])
    try:
        yield opened
    finally:
        await opened.close()


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMONSTM_")}
    return env | {
        "SYSMONSTM_CONFIG": str(data_dir / "absent.toml"),
        "SYSMONSTM_DATA_DIR": str(data_dir),
        "SYSMONSTM_PAYMENTS__PII_KEY": PII_KEY,
        "COLUMNS": "160",
        **extra,
    }


async def listed(core: Core) -> list[tuple[str, str, str, str]]:
    entries = await (await core_ledger(core)).list_entries()
    return [(e.mode.value, e.kind.value, e.value, e.added_by) for e in entries]


async def test_cli_lists_through_the_gateway(core: Core, data_dir: Path) -> None:
    """add/show/remove go through the API with the admin's token (recorded as that user);
    a viewer's token is refused with the gateway's reason and changes nothing."""
    async with served(core) as url:
        admin = cli_env(data_dir, SYSMONSTM_TOKEN=TOKENS["admin"])
        gw = ["--gateway", url]
        ran = await run_cli(["payments", "lists", "add", "block", "bin", "4000 12", *gw], admin)
        assert ran.code == 0, ran.err
        assert ran.out.strip() == "bin 400012 is on the block list"
        assert await listed(core) == [("block", "bin", "400012", "admin-user")]

        viewer = ["--token", TOKENS["viewer"]]
        args = ["payments", "lists", "add", "allow", "country", "DE", *gw, *viewer]
        refused = await run_cli(args, cli_env(data_dir))
        assert refused.code == 1
        assert "HTTP 403" in refused.err
        assert await listed(core) == [("block", "bin", "400012", "admin-user")]

        shown = await run_cli(["payments", "lists", "show", "--json", *gw], admin)
        assert shown.code == 0, shown.err
        assert [(e["mode"], e["kind"], e["value"]) for e in json.loads(shown.out)["entries"]] == [
            ("block", "bin", "400012")
        ]
        bad = await run_cli(["payments", "lists", "add", "block", "email", "nope", *gw], admin)
        assert bad.code == 1
        assert "is not an e-mail address" in bad.err
        gone = await run_cli(["payments", "lists", "remove", "block", "bin", "400012", *gw], admin)
        assert gone.code == 0, gone.err
        assert gone.out.strip() == "bin 400012 is off the block list"
        assert await listed(core) == []


async def test_cli_lists_direct_on_the_ledger(data_dir: Path) -> None:
    """With --direct the commands change the warm tier's ledger without a gateway."""
    env = cli_env(data_dir)
    ran = await run_cli(
        ["payments", "lists", "add", "allow", "email", "VIP@Example.com", "--direct"], env
    )
    assert ran.code == 0, ran.err
    assert ran.out.strip() == "email vip@example.com is on the allow list"
    shown = await run_cli(["payments", "lists", "show", "--direct", "--json"], env)
    assert shown.code == 0, shown.err
    [entry] = json.loads(shown.out)["entries"]
    assert (entry["mode"], entry["kind"], entry["value"]) == ("allow", "email", "vip@example.com")
    args = ["payments", "lists", "remove", "allow", "email", "vip@example.com", "--direct"]
    assert (await run_cli(args, env)).code == 0
    again = await run_cli(args, env)
    assert again.code == 1
    assert "the allow list holds no email" in again.err
