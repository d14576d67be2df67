"""The Deskmeter sections of docs/benchmarks.md: the two questions and heartbeat ingestion.

Built from the run's ``deskmeter.*`` and ``heartbeats.*`` measurements (see
``bench.deskmeter_jobs``); empty when the run had neither suite. Targets are issue 6's:
each question p99 <= 20 ms, heartbeat ingestion >= 50 times aw-server's.
"""

from __future__ import annotations

from typing import Protocol

from bench.model import Measurement

P99_TARGET_MS = 20.0
HEARTBEAT_TARGET = 50.0
_BACKENDS = (("sqlite", "SQLite"), ("pg", "PostgreSQL"))
_QUESTIONS = (
    ("at", '"what was I doing at <instant>" (`at`, one machine)'),
    ("month", '"this month\'s totals per task" (`summary`, a calendar month, every machine)'),
)
_PATHS = (
    ("aw", "aw-server 0.12 (ActivityWatch), `POST /api/0/…/heartbeat`"),
    ("api0", "sysmonstm `/api/0` on the gateway, same requests"),
    (
        "watcher",
        "sysmonstm native: the watcher's spool and sender, a burst (merged, up to 1,000 "
        "per message)",
    ),
    (
        "replay",
        "sysmonstm native: the watcher's spool replayed after an outage (1,000 per message)",
    ),
    ("sink-single", "gRPC ceiling: every heartbeat its own DeskBatch into a parse-and-ack sink"),
    ("single", "sysmonstm native: every heartbeat its own DeskBatch (the cost per message)"),
)


class _Runs(Protocol):
    def get(self, key: str) -> Measurement | None: ...


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _pair(m: Measurement | None) -> str:
    if m is None:
        return "-"
    return f"{_ms(m.median)} / {_ms(m.extra_median('p99_ms'))}"


def _history(report: _Runs) -> list[str]:
    parts = []
    for backend, name in _BACKENDS:
        m = report.get(f"deskmeter.at.store.{backend}")
        if m is None:
            continue
        parts.append(
            f"{name}: {m.fact('db_bytes') / 1e6:.0f} MB, loaded in {m.fact('load_seconds'):.0f} s"
        )
    if not parts:
        return []
    first = report.get("deskmeter.at.store.sqlite") or report.get("deskmeter.at.store.pg")
    assert first is not None
    intervals = first.fact("history_intervals")
    years = first.fact("history_years") or 5
    return [
        f"History: {intervals:,.0f} intervals over {years:g} year{'s' if years != 1 else ''} on "
        f"{first.fact('history_machines') or 3:.0f} machines in three time zones "
        f"({first.fact('history_day_rows'):,.0f} daily rollup rows; "
        f"{first.fact('history_events'):,.0f} watcher events would have built it; about "
        f"{intervals / (years * 12):,.0f} intervals a month). " + "; ".join(parts) + ".",
        "",
    ]


def _questions(report: _Runs) -> list[str]:
    rows = [
        "| question | backend | in process: p50 / p99 ms | REST: p50 / p99 ms "
        "| raw SQL (ceiling): p50 / p99 ms | p99 <= 20 ms |",
        "|---|---|---:|---:|---:|---|",
    ]
    for q, text in _QUESTIONS:
        for backend, name in _BACKENDS:
            store = report.get(f"deskmeter.{q}.store.{backend}")
            rest = report.get(f"deskmeter.{q}.rest.{backend}")
            raw = report.get(f"deskmeter.{q}.raw.{backend}")
            if store is None:
                continue
            worst = max(
                (p for m in (store, rest) if m and (p := m.extra_median("p99_ms")) is not None),
                default=None,
            )
            verdict = (
                "-" if worst is None else ("holds" if worst <= P99_TARGET_MS else "**misses**")
            )
            rows.append(
                f"| {text} | {name} | {_pair(store)} | {_pair(rest)} | {_pair(raw)} | {verdict} |"
            )
    return rows


def _heartbeats(report: _Runs) -> list[str]:
    sources = sorted(
        {
            int(m.fact("sources"))
            for p, _ in _PATHS
            for n in (1, 2, 4, 8)
            if (m := report.get(f"heartbeats.{p}.{n}")) is not None
        }
    )
    if not sources:
        return []
    head = " | ".join(
        f"{n} watcher{'s' if n > 1 else ''}: heartbeats/s | x aw-server" for n in sources
    )
    rows = [f"| path | {head} |", "|---|" + "---:|---:|" * len(sources)]
    for path, text in _PATHS:
        cells = []
        for n in sources:
            m, aw = report.get(f"heartbeats.{path}.{n}"), report.get(f"heartbeats.aw.{n}")
            if m is None:
                cells += ["-", "-"]
                continue
            times = "1x" if path == "aw" or aw is None else f"**{m.median / aw.median:,.0f}x**"
            cells += [f"{m.median:,.0f}", times]
        rows.append(f"| {text} | " + " | ".join(cells) + " |")
    return rows


def _heartbeat_verdict(report: _Runs) -> str:
    aw = report.get("heartbeats.aw.1")
    native = [
        (label, m)
        for label, key in (
            ("the watcher's path", "heartbeats.watcher.1"),
            ("spool replay", "heartbeats.replay.1"),
        )
        if (m := report.get(key)) is not None
    ]
    if aw is None or not native:
        return ""
    said = ", ".join(
        f"{label} {m.median / aw.median:.0f}x "
        f"({'holds' if m.median / aw.median >= HEARTBEAT_TARGET else 'misses'})"
        for label, m in native
    )
    return (
        f"Issue 6 wants heartbeat ingestion at least {HEARTBEAT_TARGET:.0f} times aw-server's, "
        f"side by side on this machine: one watcher on the native path, {said}. Every run is "
        "checked afterwards (merged events or intervals, exact bounds), so these are rates of "
        "correct results."
    )


def deskmeter_sections(report: _Runs) -> list[str]:
    """The Markdown lines of both sections (none without Deskmeter measurements)."""
    out: list[str] = []
    questions = _questions(report)
    if len(questions) > 2:
        out += [
            "### Deskmeter: the two questions on five years of history",
            "",
            *_history(report),
            *questions,
            "",
            "Each figure is the median over runs of that run's p50 (or p99) of many single "
            "queries; every answer was checked against the generated history. In process is "
            "the interval store as the gateway calls it; REST adds the gateway, HTTP and JSON "
            "(the client's decode included); the raw SQL is the index probe or the rollup sum "
            "alone, with the same driver, in the same database. For scale: aw-server takes "
            "about 9.4 s for a 30-day per-app summary over 200k events (measured.md).",
            "",
        ]
    hb = _heartbeats(report)
    if hb:
        out += [
            "### Heartbeat ingestion beside ActivityWatch",
            "",
            *hb,
            "",
            _heartbeat_verdict(report),
            "",
        ]
    return out
