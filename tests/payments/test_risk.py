"""Done-when 3: the default rules decide scripted traffic as specified, with explanations.

Traffic is decided one event at a time against an in-memory view of the history so far
(``backtest.HistoryView``, the ledger's semantics: distinct payments first seen on the card
in (t - 60 s, t], the current one included).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sysmonstm.domains.payments.backtest import HistoryView
from sysmonstm.domains.payments.model import Action, Decision, Status, Transaction
from sysmonstm.domains.payments.money import to_base
from sysmonstm.domains.payments.risk import RiskDecider, load_decider
from sysmonstm.domains.payments.risk_rules import load_ruleset
from tests.payments.ledger_support import T0, tx

CARD = "ab" * 32
SHOWN_CARD = CARD[:12] + "…"
RATES = {"USD": 1.0, "EUR": 1.08, "JPY": 0.0067}


def decider() -> RiskDecider:
    return load_decider(clock=lambda: T0)


async def decide_all(
    events: Sequence[Transaction], rules: RiskDecider | None = None
) -> list[Decision]:
    """Each event decided as the ledger would: stored, then decided with the history so far."""
    decide = rules or decider()
    view = HistoryView()
    out = []
    for event in events:
        view.add(event)
        out.append(await decide(event, view))
    return out


async def decide_one(**changes: object) -> Decision:
    return (await decide_all([tx(1, **changes)]))[0]


def at(n: int, seconds: float, **changes: object) -> Transaction:
    """Payment ``n`` on the test card at ``T0 + seconds``."""
    return tx(n, time_ms=T0 + round(seconds * 1000), **changes)


def eur(amount_minor: int) -> dict[str, object]:
    return {
        "amount_minor": amount_minor,
        "currency": "EUR",
        "amount_base_minor": to_base(amount_minor, "EUR", RATES, "USD"),
    }


async def test_ordinary_payment_is_approved_with_no_hits() -> None:
    """10.00 USD, every country the card's: approve, nothing matched, the rule set named."""
    decision = await decide_one()
    assert decision.action is Action.APPROVE
    assert decision.hits == ()
    assert decision.ruleset == load_ruleset().label
    assert decision.ruleset.startswith("default@")
    assert (decision.event_id, decision.transaction_id) == ("stripe:evt_1", "pi_1")


async def test_large_transaction_boundary_in_usd() -> None:
    """10,000.00 USD exactly approves; 10,000.01 goes to review, explained with the amount."""
    exact = await decide_one(amount_minor=1_000_000, amount_base_minor=1_000_000)
    assert exact.action is Action.APPROVE
    assert exact.hits == ()
    over = await decide_one(amount_minor=1_000_001, amount_base_minor=1_000_001)
    assert over.action is Action.REVIEW
    [hit] = over.hits
    assert hit.rule == "large_transaction"
    assert hit.action is Action.REVIEW
    assert hit.reason == "amount_in_usd 10000.01 > 10000"
    assert dict(hit.values) == {"amount_in_usd": 10000.01, "threshold": 10000.0}


async def test_large_transaction_converts_other_currencies_by_the_rate_table() -> None:
    """EUR at 1.08: 9,259.26 EUR is 10,000.00 USD (approve), 9,259.27 EUR is 10,000.01 USD
    (review); the explanation shows both amounts."""
    assert to_base(925_926, "EUR", RATES, "USD") == 1_000_000
    assert to_base(925_927, "EUR", RATES, "USD") == 1_000_001
    assert (await decide_one(**eur(925_926))).action is Action.APPROVE
    over = await decide_one(**eur(925_927))
    assert over.action is Action.REVIEW
    assert [h.rule for h in over.hits] == ["large_transaction"]
    assert dict(over.hits[0].values) == {
        "amount_in_usd": 10000.01,
        "threshold": 10000.0,
        "amount": 9259.27,
        "currency": "EUR",
    }
    # JPY has no minor unit: 1,500,000 JPY at 0.0067 is 10,050.00 USD
    yen = {"amount_minor": 1_500_000, "currency": "JPY"}
    base = to_base(1_500_000, "JPY", RATES, "USD")
    assert base == 1_005_000
    decision = await decide_one(**yen, amount_base_minor=base)
    assert dict(decision.hits[0].values)["amount"] == 1_500_000.0


async def test_large_transaction_ignores_refunds() -> None:
    """A refund of a large payment is money going back, not a new risk: no review."""
    decision = await decide_one(
        amount_minor=2_000_000, amount_base_minor=2_000_000, status=Status.REFUNDED
    )
    assert decision.action is Action.APPROVE


async def test_velocity_five_in_sixty_seconds_pass_the_sixth_is_blocked() -> None:
    """Payments at 0, 10, 20, 30, 40 s approve; the 6th at 59.999 s is blocked, explained by
    the count it saw; a 7th 60.001 s after the 6th passes again."""
    times = [0, 10, 20, 30, 40, 59.999, 59.999 + 60.001]
    decisions = await decide_all([at(n, t) for n, t in enumerate(times, start=1)])
    assert [d.action for d in decisions] == [Action.APPROVE] * 5 + [Action.BLOCK, Action.APPROVE]
    assert all(d.hits == () for d in decisions[:5] + decisions[6:])
    [hit] = decisions[5].hits
    assert hit.rule == "velocity"
    assert hit.action is Action.BLOCK
    assert dict(hit.values) == {
        "card_fingerprint": SHOWN_CARD,
        "count": 6,
        "window_s": 60.0,
        "threshold": 5.0,
    }
    assert hit.reason == f"6 payments on card {SHOWN_CARD} in 60 s > 5"


async def test_velocity_window_is_open_at_its_start() -> None:
    """Any 60 s is (t - 60 s, t]: a 6th payment exactly 60.000 s after the first passes (the
    first has left), one at 59.999 s is blocked."""
    base = [at(n, t) for n, t in enumerate([0, 10, 20, 30, 40], start=1)]
    left = await decide_all([*base, at(6, 60.0)])
    assert left[-1].action is Action.APPROVE
    inside = await decide_all([*base, at(6, 59.999)])
    assert inside[-1].action is Action.BLOCK


async def test_velocity_counts_distinct_payments_on_one_card() -> None:
    """A second event of the same payment (authorised, then captured) is not another
    payment, and other cards do not count."""
    events = [at(n, n, status=Status.AUTHORIZED) for n in range(1, 6)]
    events.append(
        tx(99, event_id="stripe:evt_capture_5", transaction_id="pi_5", time_ms=T0 + 6_000)
    )
    events += [at(n, 7 + n, card_fingerprint="cd" * 32) for n in range(10, 16)]
    decisions = await decide_all(events)
    assert [d.action for d in decisions[:6]] == [Action.APPROVE] * 6
    # the other card's own 6th payment in 60 s is blocked, the first card's five do not count
    assert [d.action for d in decisions[6:]] == [Action.APPROVE] * 5 + [Action.BLOCK]


async def test_velocity_without_a_card_never_fires() -> None:
    """Bank transfers carry no card: no count, no block."""
    decisions = await decide_all([at(n, n, card_fingerprint="") for n in range(1, 10)])
    assert {d.action for d in decisions} == {Action.APPROVE}


@pytest.mark.parametrize(
    ("countries", "action", "matched"),
    [
        (("US", "US", "US"), Action.APPROVE, None),
        (("FR", "US", "US"), Action.REVIEW, "country"),
        (("US", "DE", "US"), Action.REVIEW, "ip_country"),
        (("FR", "DE", "US"), Action.REVIEW, "country, ip_country"),
        (("us", "Us", "US"), Action.APPROVE, None),
        (("FR", "DE", ""), Action.APPROVE, None),
        (("", "", "US"), Action.APPROVE, None),
        (("", "DE", "US"), Action.REVIEW, "ip_country"),
        (("FR", "", "US"), Action.REVIEW, "country"),
    ],
    ids=[
        "all-same",
        "tx-country-differs",
        "ip-country-differs",
        "both-differ",
        "case-does-not-matter",
        "no-card-country",
        "no-tx-or-ip-country",
        "only-ip-country-known",
        "only-tx-country-known",
    ],
)
async def test_geographic_anomaly(
    countries: tuple[str, str, str], action: Action, matched: str | None
) -> None:
    """Transaction or IP country differing from the card's reviews; a missing country on
    either side says nothing."""
    country, ip_country, card_country = countries
    decision = await decide_one(country=country, ip_country=ip_country, card_country=card_country)
    assert decision.action is action
    if matched is None:
        assert decision.hits == ()
        return
    [hit] = decision.hits
    assert hit.rule == "geographic_anomaly"
    expected: dict[str, object] = {"card_country": "US", "matched": matched}
    expected.update(
        {k: v.upper() for k, v in (("country", country), ("ip_country", ip_country)) if v}
    )
    assert dict(hit.values) == expected
    for name in matched.split(", "):
        assert f"{name} {expected[name]} != card_country US" in hit.reason


async def test_strictest_action_wins_and_every_hit_is_kept() -> None:
    """A large, foreign 6th payment in a minute: blocked, with all three rules explained in
    file order."""
    big = {"amount_minor": 2_000_000, "amount_base_minor": 2_000_000, "country": "FR"}
    events = [at(n, n) for n in range(1, 6)] + [at(6, 6, **big)]
    decision = (await decide_all(events))[-1]
    assert decision.action is Action.BLOCK
    assert [(h.rule, h.action) for h in decision.hits] == [
        ("large_transaction", Action.REVIEW),
        ("velocity", Action.BLOCK),
        ("geographic_anomaly", Action.REVIEW),
    ]


async def test_decisions_are_deterministic() -> None:
    """The same history decides the same way twice (a replay cannot decide differently)."""
    events = [at(n, n * 7, country="FR" if n % 3 else "US") for n in range(1, 12)]
    first = await decide_all(events)
    second = await decide_all(events)
    assert first == second
