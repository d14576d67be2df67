"""Task rules: a workspace name (shell glob, case-sensitive) → a task, from the settings
(``[[deskmeter.task_rules]] workspace = "Mail*"  task = "Email"``)."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Sequence

import msgspec

from sysmonstm.config import TaskRule
from sysmonstm.domains.deskmeter.model import DeskBatch


class TaskRules:
    """The rules in order; the first that matches a workspace name gives its task."""

    def __init__(self, rules: Sequence[TaskRule]) -> None:
        self._rules = tuple((re.compile(fnmatch.translate(r.workspace)), r.task) for r in rules)

    def task_for(self, workspace: str) -> str:
        """The task of the first rule whose glob matches ``workspace``, else ""."""
        for pattern, task in self._rules:
            if pattern.fullmatch(workspace):
                return task
        return ""

    def apply(self, batch: DeskBatch) -> DeskBatch:
        """``batch`` with each event that names no task given its rule's task (an event's
        own task always wins)."""
        if not self._rules or all(e.task for e in batch.events):
            return batch
        events = tuple(
            e if e.task else msgspec.structs.replace(e, task=self.task_for(e.workspace))
            for e in batch.events
        )
        return dataclasses.replace(batch, events=events)
