"""Group fsync of an adapter's spool: many webhooks made durable by one ``fsync``.

An adapter answers 200 only once the event is on disk (fsynced): a processor that got its
200 never retries, so an event lost after it would be lost for good. One ``fsync`` costs
milliseconds on most disks (~4 ms on the benchmark machine), and done per request on the
event loop it caps an adapter at a few hundred webhooks a second while the CPU idles.

``GroupSync.durable()`` waits for a *round* that began after the call: ``prepare`` (on the
event loop: the adapter appends what the round's requests brought, ``TxSpool``), then an
``fsync`` of the spool in a worker thread. The first caller starts a round; callers arriving
while it runs join the next one, which starts when it ends. So concurrent requests share
rounds (one append and one ``fsync`` however many requests it covers), the event loop never
blocks on the disk, and no request is answered before its own bytes are durable.

The worker thread only flushes and fsyncs the spool's open segment (``Spool.sync``) while the
loop may append to it: buffered writes are locked by ``io``; a segment rolled meanwhile was
fsynced by the roll itself before it was closed, so when the thread finds the file closed or
replaced, what it was asked to cover is durable already. Any such error falls back to a plain
``Spool.sync`` on the loop (correct by construction, only slower); an ``OSError`` from that
reaches the waiting requests (answered 503: nothing acknowledged that may be lost).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sysmonstm.transport.spool import Spool


class GroupSync:
    """Shared fsyncs of ``spool`` (see the module docstring); one per event loop."""

    def __init__(self, spool: Spool, prepare: Callable[[], None] | None = None) -> None:
        self.spool = spool
        self._prepare = prepare
        self.rounds = 0  # fsyncs started (for tests and logs)
        self._running = False
        self._next: asyncio.Future[None] | None = None  # the round after the running one

    async def durable(self) -> None:
        """Return once a round that began after this call is done: everything appended
        before it, and what its ``prepare`` appended, is fsynced. ``OSError`` when the disk
        refused."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            # retrieved here too, so a round whose requests were all cancelled stays quiet
            self._next.add_done_callback(lambda f: f.cancelled() or f.exception())
        waiter = self._next
        if not self._running:
            self._start()
        await asyncio.shield(waiter)  # one cancelled request must not cancel the round

    def _start(self) -> None:
        waiter, self._next = self._next, None
        if waiter is None:
            return
        self._running = True
        self.rounds += 1
        task = asyncio.ensure_future(self._round())
        task.add_done_callback(lambda t: self._finish(t, waiter))

    async def _round(self) -> None:
        if self._prepare is not None:
            self._prepare()
        try:
            await asyncio.to_thread(self.spool.sync)
        except (ValueError, AttributeError, OSError):
            self.spool.sync()  # the segment changed under the thread: sync it here

    def _finish(self, task: asyncio.Task[None], waiter: asyncio.Future[None]) -> None:
        self._running = False
        if not waiter.done():
            exc = None if task.cancelled() else task.exception()
            if task.cancelled():
                waiter.cancel()
            elif exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(None)
        if self._next is not None:
            self._start()
