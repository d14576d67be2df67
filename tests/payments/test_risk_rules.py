"""The risk rule file: the shared rule language plus an action; bad files are refused with
the file, line, rule and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysmonstm.domains.payments.backtest import HistoryView
from sysmonstm.domains.payments.model import Action
from sysmonstm.domains.payments.risk import RiskDecider
from sysmonstm.domains.payments.risk_rules import load_ruleset, parse_ruleset
from sysmonstm.errors import ConfigError
from tests.payments.ledger_support import T0, tx

GOOD = """\
[ruleset]
name = "draft"

[[rule]]
name = "big"
action = "review"
field = "amount_in_usd"
op = "gte"
threshold = 500

# a comment between rules
[[rule]]
name = "from_fr"
action = "block"
field = "ip_country"
op = "in"
threshold = ["FR", "BE"]
message = "{ip_country} is blocked ({amount:.2f} {currency})"
"""


def test_shipped_rule_set_loads_with_the_three_named_rules() -> None:
    """The default file holds large_transaction, velocity and geographic_anomaly."""
    ruleset = load_ruleset()
    assert ruleset.name == "default"
    assert [(r.name, r.action) for r in ruleset.rules] == [
        ("large_transaction", Action.REVIEW),
        ("velocity", Action.BLOCK),
        ("geographic_anomaly", Action.REVIEW),
    ]
    assert ruleset.lookback_ms == 60_000


def test_rule_lines_name_and_version() -> None:
    """Each rule remembers its [[rule]] line; the version changes with the text."""
    ruleset = parse_ruleset(GOOD, "draft.toml")
    assert [(r.name, r.line) for r in ruleset.rules] == [("big", 4), ("from_fr", 12)]
    assert ruleset.label == f"draft@{ruleset.version}"
    assert parse_ruleset(GOOD.replace("500", "501")).version != ruleset.version
    assert parse_ruleset("", name="empty").rules == ()


async def test_custom_message_is_the_reason() -> None:
    """A rule's message template is rendered with the transaction's fields."""
    decide = RiskDecider(parse_ruleset(GOOD), clock=lambda: T0)
    decision = await decide(tx(1, ip_country="FR", amount_minor=1234), HistoryView())
    assert decision.action is Action.BLOCK
    [hit] = decision.hits
    assert hit.reason == "FR is blocked (12.34 USD)"
    assert dict(hit.values) == {"ip_country": "FR", "threshold": "FR, BE"}


async def test_allow_rule_short_circuits() -> None:
    """An allow rule that matches approves, whatever the other rules say."""
    text = GOOD + '\n[[rule]]\nname = "vip"\naction = "allow"\nfield = "email_domain"\n'
    text += 'op = "eq"\nthreshold = "vip.example"\n'
    decide = RiskDecider(parse_ruleset(text), clock=lambda: T0)
    vip = await decide(tx(1, ip_country="FR", email="Boss@VIP.example"), HistoryView())
    assert vip.action is Action.APPROVE
    assert [h.rule for h in vip.hits] == ["vip"]
    other = await decide(tx(2, ip_country="FR"), HistoryView())
    assert other.action is Action.BLOCK


BAD = [
    ("[[rule]]\nname = 'x'\naction = 'review'\nop = 'gt'\nthreshold = = 3\n", "line 5"),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\nfield = 'amount'\nop = 'gtt'\nthreshold = 1\n",
        "bad.toml:1: rule 'x': key 'op': 'gtt' is not one of",
    ),
    (
        "\n\n[[rule]]\nname = 'ok'\naction = 'review'\nfield = 'amount'\nop = 'gt'\n"
        "threshold = 1\n\n[[rule]]\nname = 'typo'\naction = 'review'\nfield = 'amout'\n"
        "op = 'gt'\nthreshold = 1\n",
        "bad.toml:10: rule 'typo': key 'field': unknown field 'amout'",
    ),
    (
        "[[rule]]\nname = 'x'\nfield = 'amount'\nop = 'gt'\nthreshold = 1\n",
        "bad.toml:1: rule 'x': key 'action': is required",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'deny'\nfield = 'amount'\nop = 'gt'\nthreshold = 1\n",
        "rule 'x': key 'action': 'deny' is not one of: allow review block",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'block'\nop = 'gt'\nthreshold = 5\n"
        "window = { agg = 'avg', seconds = 60 }\ngroup_by = ['card_fingerprint']\n",
        "rule 'x': key 'window.agg': payment rules count payments",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'block'\nop = 'gt'\nthreshold = 5\n"
        "window = { agg = 'count', seconds = 60 }\ngroup_by = ['email']\n",
        "rule 'x': key 'group_by': a count window needs group_by = ['card_fingerprint']",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\nfield = 'country'\nop = 'gt'\nthreshold = 5\n",
        "rule 'x': key 'op': gt needs a number field, not 'country'",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\nfield = 'amount'\nop = 'eq'\nthreshold = 'US'\n",
        "rule 'x': key 'threshold': 'amount' holds a number, not 'US'",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\ntopic = 'metrics.>'\nfield = 'amount'\n"
        "op = 'gt'\nthreshold = 1\n",
        "rule 'x': key 'topic': does not apply to payment risk rules",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\nfield = 'amount'\nop = 'gt'\nthreshold = 1\n"
        "[[rule]]\nname = 'x'\naction = 'block'\nfield = 'amount'\nop = 'gt'\nthreshold = 2\n",
        "bad.toml:7: rule 'x': key 'name': duplicate (first on line 1)",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\nfield = 'country'\nop = 'ne'\n"
        "other = 'card_country'\nthreshold = 'US'\n",
        "rule 'x': key 'other': give a threshold or another field, not both",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\nfield = 'country'\nop = 'ne'\nother = 'amount'\n",
        "rule 'x': key 'other': 'amount' is not the same kind as 'country'",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'review'\nfield = 'amount'\nop = 'gt'\nthreshold = 1\n"
        "message = '{0}'\n",
        "rule 'x': key 'message': template '{0}' must name its fields",
    ),
    ("[rules]\nx = 1\n", "bad.toml: key 'rules': unknown; use [ruleset] and [[rule]] tables"),
]


@pytest.mark.parametrize(
    ("text", "message"),
    BAD,
    ids=[
        "toml-syntax",
        "unknown-op",
        "unknown-field-line",
        "no-action",
        "unknown-action",
        "window-not-count",
        "window-not-per-card",
        "number-op-on-text",
        "text-threshold-on-number",
        "topic-not-for-payments",
        "duplicate-name",
        "other-and-threshold",
        "other-of-another-kind",
        "bad-template",
        "unknown-table",
    ],
)
def test_bad_rule_file_is_refused_naming_line_rule_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    """Every mistake is a ConfigError pointing at the file, the rule's line, rule and key."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_ruleset(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_unreadable_rule_file_is_refused(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read risk rules"):
        load_ruleset(tmp_path / "missing.toml")
