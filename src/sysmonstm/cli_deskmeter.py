"""``sysmonstm deskmeter …``: the watcher, tasks, questions, panels, ActivityWatch import.

Each group of commands lives beside the code it drives, in ``domains/deskmeter/cli_*.py``,
and registers itself on ``deskmeter_app`` when imported below.
"""

from __future__ import annotations

import typer

deskmeter_app = typer.Typer(
    help="Deskmeter: workspace and task tracking (see docs/deskmeter.md).",
    no_args_is_help=True,
)

# Command modules register on ``deskmeter_app`` when imported (they import this module, and
# the global flags from ``sysmonstm.cli`` inside their commands). Add one line per module.
from sysmonstm.domains.deskmeter import (  # noqa: E402
    cli_aw,  # noqa: F401
    cli_query,  # noqa: F401
    cli_watch,  # noqa: F401
)
