"""``sysmonstm payments …``: adapters, audit, lists, backtests, the simulator.

Each group of commands lives beside the code it drives, in ``domains/payments/cli_*.py``,
and registers itself on ``payments_app`` when imported at the end of this module.
"""

from __future__ import annotations

import typer

payments_app = typer.Typer(
    help="The payment hub: adapters, audit trail, lists, backtests (see docs/payments.md).",
    no_args_is_help=True,
)

# Command modules register on ``payments_app`` when imported (they import this module, and
# the global flags from ``sysmonstm.cli`` inside their commands). Add one line per module.

from sysmonstm.domains.payments import (  # noqa: E402
    cli_adapter,  # noqa: F401
    cli_archive,  # noqa: F401
    cli_audit,  # noqa: F401
    cli_risk,  # noqa: F401
    cli_simulate,  # noqa: F401
    cli_tokens,  # noqa: F401
)
