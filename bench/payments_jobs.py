"""The measurements of the ``payments`` suite and how to take a run of each (``bench.payments``
does the work; ``python -m bench`` wraps each pair in a ``Job``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench import payments
from bench.model import Measurement, Run
from bench.payments import Ladder, PaymentsOptions

RunFn = Callable[[Path, int], Run]
COMMAND = "python -m bench --only payments"
_PATH_TEXT = (
    "A real `sysmonstm up --no-collect` (aggregator with the payments pipeline, rules, "
    "gateway; SQLite warm tier, memory bus; rates for USD, EUR, GBP, JPY) and a real "
    "`sysmonstm payments adapter stripe` as processes; the load generator "
    "(`bench.payments_load`, a process of its own, requests built and Stripe-signed before "
    "the clock starts) posts the simulator's traffic (card-testing bursts, large amounts, "
    "country mismatches, card numbers in sloppy fields, ~5% retries of an event already sent) "
    "over {workers} kept-alive connections; a WebSocket client on the gateway's `/ws` (no "
    "per-message compression) takes every `risk.decision.*`. Afterwards the ledger's SQLite "
    "file is read: exactly once holds when ledger rows == decisions stored == distinct events "
    "sent == decisions published, each event's decision published once. CPU of each process "
    "while sending is kept as a fact (% of one core)."
)
_LATENCY_FACTS = (
    ("p99, ms", "p99_ms", ".1f"),
    ("achieved rate, webhooks/s", "achieved_rate", ".0f"),
    ("largest send lag, ms", "lag_max_ms", ".0f"),
    ("webhooks sent (retries included)", "webhooks", ".0f"),
    ("distinct events = ledger rows = decisions published", "ledger_rows", ".0f"),
    ("exactly once held", "exactly_once", ""),
    ("decisions the gateway dropped (subscriber behind)", "dropped_by_gateway", ".0f"),
    ("CPU, % of a core: hub (`up`)", "cpu_up_pct", ".0f"),
    ("CPU, % of a core: adapter", "cpu_adapter_pct", ".0f"),
    ("CPU, % of a core: load generator", "cpu_load_pct", ".0f"),
    ("CPU, % of a core: benchmark process (WebSocket subscriber)", "cpu_bench_pct", ".0f"),
)
_RECEIVE_FACTS = (
    ("CPU, % of a core: the bare app", "server_cpu_pct", ".0f"),
    ("CPU, % of a core: load generator", "load_cpu_pct", ".0f"),
)


def _measurements(o: PaymentsOptions) -> list[tuple[Measurement, RunFn]]:
    path = _PATH_TEXT.format(workers=o.connections)
    memo = Ladder()
    return [
        (
            Measurement(
                key="payments.receive",
                title="Signed-webhook receive ceiling, bare uvicorn app",
                short="webhook receive ceiling",
                meaning=f"{o.receive_events:,} Stripe-signed webhooks, unpaced, from the same "
                f"load generator ({o.connections} kept-alive connections) into "
                "`bench.payments_sink`: a bare Starlette app on uvicorn (httptools, the asyncio "
                "loop, as the adapter runs) that reads the raw body, verifies `Stripe-Signature` "
                "(`stripe_sig.verify`), parses the JSON and answers 200, and nothing else. Every "
                "answer checked to be 200.",
                command=f"{COMMAND}, which runs: python -m bench.payments_sink --port $PORT "
                "--secret $SECRET & python -m bench.payments_load --rate 0",
                unit="webhooks/s",
                facts=_RECEIVE_FACTS,
            ),
            lambda d, seed: payments.receive_run(d, seed, o),
        ),
        (
            Measurement(
                key="payments.ledger",
                title="Ledger insert ceiling, SQLite",
                short="ledger insert ceiling",
                meaning=f"`Ledger.record` of {o.ledger_events:,} new events into a fresh SQLite "
                f"ledger in batches of {o.ledger_batch}, in process, with an approve-everything "
                "decider: per event the unique-id insert, its decision, two audit links (hash "
                "chain) and two outbox rows; per batch one transaction, run whole on the writer "
                "thread, one fsync at its commit (group commit, as the hub records). Checked "
                "afterwards: every event stored.",
                command=COMMAND,
                unit="tx/s",
            ),
            lambda d, seed: payments.ledger_run(d, seed, o),
        ),
        (
            Measurement(
                key="payments.latency",
                title=f"Webhook to decision latency at {o.steady_rate:g} webhooks/s",
                short=f"webhook→decision p50 @{o.steady_rate:g}/s",
                meaning=f"{path} Paced at {o.steady_rate:g} webhooks/s for "
                f"{o.steady_seconds:g} s. Latency per event: from the load generator's send of "
                "its first delivery answered 200 (the adapter's receive, same machine, one "
                "clock) to the WebSocket client seeing its `risk.decision.*`, for events first "
                f"sent after the run's first {payments.WARM_UP_S:g} s (warm-up). Median here, "
                "p99 below (the target: p99 within 20 ms at 1,000/s).",
                command=COMMAND,
                unit="ms p50",
                facts=_LATENCY_FACTS,
            ),
            lambda d, seed: payments.latency_run(d, seed, o, memo),
        ),
        (
            Measurement(
                key="payments.sustained",
                title="Highest sustained rate with exactly once intact",
                short="sustained, exactly once",
                meaning=f"{path} Rates "
                + ", ".join(f"{r:g}" for r in o.ladder)
                + f" webhooks/s, {o.ladder_seconds:g} s each, each on a fresh hub, upwards "
                "until one does not hold; the first run starts at the lowest, a later one at the "
                "highest the run before held (one lower if that no longer holds), and a rate "
                f"equal to the latency measurement's is that run, not run again; at most "
                f"{o.ladder_steps} new hubs per run (the suite's time budget). A rate holds "
                f"when the load generator kept its pace (at least {payments.PACE_HELD:.0%} of "
                f"it, no send more than {payments.LAG_HELD_S:g} s late), every answer was 200, "
                f"decisions came back within {payments.P99_HELD_MS:g} ms at p99 and every one "
                f"within {payments.DRAIN_S:g} s of the last send, the gateway dropped none, and "
                "exactly once held. The figure is the rate achieved at the highest rate that "
                "held (0 when none did; the ladder says why).",
                command=COMMAND,
                unit="webhooks/s",
                ceilings=("payments.receive", "payments.ledger"),
                facts=(("the ladder", "ladder", ""), *_LATENCY_FACTS),
            ),
            lambda d, seed: payments.sustained_run(d, seed, o, memo),
        ),
    ]


def payments_jobs(opts: PaymentsOptions) -> list[tuple[Measurement, RunFn]]:
    return _measurements(opts)
