"""A client that polls one URL once a second, as Prometheus scrapes or a web UI refreshes.

    python -m bench.scraper --url http://127.0.0.1:PORT/metrics --seconds 70

It runs in its own process so the benchmark can count its CPU apart from the monitor it
polls. One kept-alive connection (``http.client``), ``Accept-Encoding: gzip`` as Prometheus
and browsers send it; the body is read whole, not parsed. Polls fall on a fixed 1 s grid
from the start (a slow answer delays the next poll, no burst follows). At the end (or on
SIGTERM) it prints one JSON line: ``{"event": "scraper done", "polls", "errors",
"bytes"}``; a non-200 answer or a broken connection counts as an error (and reconnects).
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import time
import urllib.parse

HEADERS = {"Accept-Encoding": "gzip", "Accept": "*/*", "User-Agent": "sysmonstm-bench"}


class _Stop(Exception):  # noqa: N818 - a signal, not an error
    """SIGTERM: stop polling and report."""


def _stop(_signum: int, _frame: object) -> None:
    raise _Stop


def scrape(url: str, seconds: float, interval_s: float = 1.0) -> dict[str, object]:
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    polls = errors = size = 0
    origin = time.monotonic()
    try:
        while time.monotonic() - origin < seconds:
            try:
                conn.request("GET", path, headers=HEADERS)
                answer = conn.getresponse()
                size += len(answer.read())
                errors += answer.status != 200
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()  # reconnects on the next request
            polls += 1
            delay = origin + polls * interval_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    except _Stop:
        """SIGTERM: stop polling and report."""
    finally:
        conn.close()
    return {"event": "scraper done", "polls": polls, "errors": errors, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    a = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    print(json.dumps({"event": "scraper started"}), flush=True)
    print(json.dumps(scrape(a.url, a.seconds)), flush=True)


if __name__ == "__main__":
    main()
