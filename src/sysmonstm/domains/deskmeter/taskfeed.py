"""The task set on this machine: kept on disk, changed from the gateway's WebSocket.

``sysmonstm deskmeter task``, ``PUT /api/v1/deskmeter/task`` and the dashboard make the
gateway publish ``deskmeter.task.<machine>`` (``{"machine", "task", "time_ms"}``); the
watcher follows that topic and applies the task with a SWITCH, so a machine's timeline has
one writer. The task survives a restart of the watcher (a file beside its spool).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from sysmonstm.gateway.follow import follow

log = structlog.get_logger(__name__)

MAX_TASK_CHARS = 200


def task_topic(machine_id: str) -> str:
    return f"deskmeter.task.{machine_id}"


class CurrentTask:
    """The current task ("" for none), persisted in ``path`` on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._task = ""
        with contextlib.suppress(OSError, UnicodeDecodeError):
            self._task = path.read_text(encoding="utf-8").rstrip("\n")[:MAX_TASK_CHARS]

    @property
    def task(self) -> str:
        return self._task

    def set(self, task: str) -> bool:
        """Make ``task`` current; whether it changed. Written atomically (rename)."""
        if task == self._task:
            return False
        self._task = task
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write(task + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        return True


def task_from(envelope: dict[str, Any], machine_id: str) -> str | None:
    """The task an envelope sets on ``machine_id``, or ``None`` when it sets none (another
    machine, not a task message, a malformed payload)."""
    payload = envelope.get("payload")
    if not isinstance(payload, dict) or payload.get("machine") != machine_id:
        return None
    task = payload.get("task")
    if not isinstance(task, str) or len(task) > MAX_TASK_CHARS:
        log.warning("ignoring a malformed task message", payload=payload)
        return None
    return task


async def follow_tasks(
    gateway: str, machine_id: str, current: CurrentTask, changed: Callable[[], None]
) -> None:
    """Apply every task published for ``machine_id`` until cancelled (``changed()`` after
    each change). While the gateway is away, changes made meanwhile are missed."""
    async for envelope in follow(gateway, [task_topic(machine_id)]):
        if envelope.get("connected"):
            log.info("following task changes", gateway=gateway, machine_id=machine_id)
            continue
        task = task_from(envelope, machine_id)
        if task is not None and current.set(task):
            log.info("task set", task=task)
            changed()
