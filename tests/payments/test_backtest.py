"""Backtesting on the real ledger: stored transactions replayed through a draft rule set
report exactly the decisions that change (``backtest`` and ``sysmonstm payments backtest``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sysmonstm.domains.payments.backtest import backtest, changed_actions
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.model import Action, Transaction
from sysmonstm.domains.payments.risk import load_decider
from sysmonstm.domains.payments.risk_rules import load_ruleset, parse_ruleset
from tests.deskmeter.query_support import run_cli
from tests.payments.api_fixtures import PII_KEY
from tests.payments.ledger_support import T0, ledger_url, opened_ledger, tx

APPROVE, REVIEW, BLOCK = Action.APPROVE, Action.REVIEW, Action.BLOCK
FROM, TO = T0, T0 + 60_000  # 2026-01-01T00:00:00Z to 00:01:00Z
DRAFT = """\
[ruleset]
name = "draft"

# lower the large threshold, tighten velocity, drop the geographic rule
[[rule]]
name = "large_transaction"
action = "review"
field = "amount_in_usd"
op = "gt"
threshold = 5000

[[rule]]
name = "velocity"
action = "block"
window = { agg = "count", seconds = 60 }
group_by = ["card_fingerprint"]
op = "gt"
threshold = 3
"""


def usd(n: int, seconds: float, card: str, cents: int = 6_000, **changes: object) -> Transaction:
    return tx(
        n,
        time_ms=T0 + round(seconds * 1000),
        card_fingerprint=card * 32,
        amount_minor=cents,
        amount_base_minor=cents,
        **changes,
    )


HISTORY = [
    # card F: three payments before the window, feeding the draft's count only
    usd(90, -20, "f0"),
    usd(91, -10, "f0"),
    usd(92, -5, "f0"),
    usd(1, 1, "a0"),  # 60.00: approve either way
    usd(2, 2, "b0", 700_000),  # 7,000.00: approve -> review
    usd(3, 3, "c0", 1_200_000),  # 12,000.00: review either way
    usd(4, 4, "d0", country="FR"),  # abroad: review -> approve (draft has no geo rule)
    *[usd(n, n, "e0") for n in (10, 11, 12, 13)],  # 4th in a minute: approve -> block
    usd(20, 20, "f0"),  # 4th on card F counting the ones before FROM: approve -> block
    usd(70, 70, "b0", 900_000),  # after TO: not replayed
]
EXPECTED = {
    "stripe:evt_2": (APPROVE, REVIEW),
    "stripe:evt_4": (REVIEW, APPROVE),
    "stripe:evt_13": (APPROVE, BLOCK),
    "stripe:evt_20": (APPROVE, BLOCK),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else None
    return ledger_url(request.param, tmp_path, dsn)


async def recorded(ledger: SqlLedger) -> None:
    """The history, recorded in time order by the default rules as the hub would."""
    stored = await ledger.record(HISTORY, load_decider(), "stripe-1")
    assert len(stored) == len(HISTORY)


async def test_backtest_reports_exactly_the_decisions_that_change(url: str) -> None:
    """Lower threshold, tighter velocity (history before FROM counted), no geo rule: four
    decisions change, each with both explanations; events outside [FROM, TO) are not
    replayed."""
    async with opened_ledger(url) as ledger:
        await recorded(ledger)
        seen: list[int] = []
        report = await backtest(ledger, parse_ruleset(DRAFT), FROM, TO, progress=seen.append)
    assert report.replayed == 9
    assert seen[-1] == 12  # the three events of the lookback were read too
    assert changed_actions(report) == EXPECTED
    assert report.transitions() == {"approve->review": 1, "approve->block": 2, "review->approve": 1}
    body = report.to_json()
    assert body["ruleset"].startswith("draft@")
    assert body["changed"] == 4
    by_event = {c["event_id"]: c for c in body["changes"]}
    velocity = by_event["stripe:evt_20"]["after"]["hits"]
    assert [(h["rule"], h["values"]["count"]) for h in velocity] == [("velocity", 4)]
    geo = by_event["stripe:evt_4"]["before"]["hits"]
    assert [h["rule"] for h in geo] == ["geographic_anomaly"]
    assert by_event["stripe:evt_4"]["after"]["hits"] == []


async def test_backtest_with_the_rules_that_decided_changes_nothing(url: str) -> None:
    """Replaying the stored history through the rules that decided it gives the stored
    decisions back (a replay cannot decide differently)."""
    async with opened_ledger(url) as ledger:
        await recorded(ledger)
        report = await backtest(ledger, load_ruleset(), T0 - 3_600_000, T0 + 3_600_000)
    assert report.replayed == len(HISTORY)
    assert report.changes == []


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMONSTM_")}
    return env | {
        "SYSMONSTM_CONFIG": str(data_dir / "absent.toml"),
        "SYSMONSTM_DATA_DIR": str(data_dir),
        "SYSMONSTM_PAYMENTS__PII_KEY": PII_KEY,
        "COLUMNS": "200",
    }


async def test_backtest_command_json_table_and_bad_draft(tmp_path: Path) -> None:
    """``sysmonstm payments backtest`` on the warm tier's SQLite ledger: --json lists the
    same four changes, the table says how many changed, a bad draft names its line."""
    async with opened_ledger(ledger_url("sqlite", tmp_path, None)) as ledger:
        await recorded(ledger)
    draft = tmp_path / "draft.toml"
    draft.write_text(DRAFT)
    env = cli_env(tmp_path)
    span = ["--from", "2026-01-01T00:00:00", "--to", "2026-01-01T00:01:00Z"]
    ran = await run_cli(["payments", "backtest", "--rules", str(draft), *span, "--json"], env)
    assert ran.code == 0, ran.err
    body = json.loads(ran.out)
    assert (body["from_ms"], body["to_ms"], body["replayed"]) == (FROM, TO, 9)
    got = {c["event_id"]: (c["before"]["action"], c["after"]["action"]) for c in body["changes"]}
    assert got == {k: (b.label, a.label) for k, (b, a) in EXPECTED.items()}

    table = await run_cli(["payments", "backtest", "--rules", str(draft), *span], env)
    assert table.code == 0, table.err
    assert "4 of 9 decisions change" in table.out
    assert "stripe:evt_13" in table.out
    assert "approve->block: 2" in table.out

    draft.write_text(DRAFT.replace('op = "gt"\nthreshold = 3', 'op = "more"\nthreshold = 3'))
    bad = await run_cli(["payments", "backtest", "--rules", str(draft), *span], env)
    assert bad.code == 1
    assert f"{draft}:12: rule 'velocity': key 'op': 'more' is not one of" in bad.err.replace(
        "\n", ""
    )
