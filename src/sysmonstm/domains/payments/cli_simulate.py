"""``sysmonstm payments simulate``: realistic signed webhooks to the adapters, so the hub can be
seen alive (``sysmonstm up`` plus the three adapters), and a summary at the end.

Where each processor's webhooks go: ``--stripe URL``, ``--paypal URL``, ``--bank URL``; with
none of them, to every adapter at its configured ``listen`` address. Secrets come from the
settings the adapters read (``payments.stripe.webhook_secrets``, ``payments.paypal.webhook_id``,
``payments.bank.api_token``); PayPal needs the simulator's signing key and the URL of its
certificate (``--paypal-key``, ``--paypal-cert-url``), which the PayPal adapter must be
configured to accept (an allowed host, a CA it trusts).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sysmonstm.cli_payments import payments_app

if TYPE_CHECKING:
    from sysmonstm.config import Settings
    from sysmonstm.domains.payments.simulate import Target

WEBHOOK_PATHS = {"stripe": "/webhooks/stripe", "paypal": "/webhooks/paypal", "bank": "/feed"}


def targets(
    settings: Settings,
    urls: dict[str, str | None],
    paypal_key: Path | None,
    paypal_cert_url: str | None,
) -> dict[str, Target]:
    """The simulator's targets: the URLs given, else every adapter's configured address;
    ``ConfigError`` when a processor cannot be signed for."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from sysmonstm.domains.payments.paypal_sig import PaypalSigner
    from sysmonstm.domains.payments.simulate import Target
    from sysmonstm.errors import ConfigError

    p = settings.payments
    listen = {"stripe": p.stripe.listen, "paypal": p.paypal.listen, "bank": p.bank.listen}
    chosen = {k: v for k, v in urls.items() if v}
    if not chosen:
        chosen = {k: f"http://{listen[k]}{WEBHOOK_PATHS[k]}" for k in listen}
        if paypal_key is None:
            chosen.pop("paypal")
    found: dict[str, Target] = {}
    if "stripe" in chosen:
        if not p.stripe.webhook_secrets:
            raise ConfigError("payments.stripe.webhook_secrets is empty: nothing to sign with")
        secret = p.stripe.webhook_secrets[0].get_secret_value()
        found["stripe"] = Target(chosen["stripe"], stripe_secret=secret)
    if "paypal" in chosen:
        if paypal_key is None or not paypal_cert_url:
            raise ConfigError("PayPal webhooks need --paypal-key and --paypal-cert-url")
        try:
            key = serialization.load_pem_private_key(paypal_key.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--paypal-key {paypal_key}: not a readable PEM key") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("--paypal-key must be an RSA key (PayPal signs with RSA-SHA256)")
        if not p.paypal.webhook_id:
            raise ConfigError("payments.paypal.webhook_id is empty: nothing to sign for")
        signer = PaypalSigner(key, paypal_cert_url)
        found["paypal"] = Target(
            chosen["paypal"], paypal=signer, paypal_webhook_id=p.paypal.webhook_id
        )
    if "bank" in chosen:
        token = p.bank.api_token.get_secret_value() if p.bank.api_token else ""
        found["bank"] = Target(chosen["bank"], bank_token=token)
    return found


@payments_app.command("simulate")
def simulate(
    rate: Annotated[float, typer.Option(min=0.1, help="Webhooks per second, in all.")] = 200.0,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds to run (default: until stopped).")
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Webhooks to send, then stop.")] = None,
    stripe: Annotated[str | None, typer.Option(help="Stripe adapter's webhook URL.")] = None,
    paypal: Annotated[str | None, typer.Option(help="PayPal adapter's webhook URL.")] = None,
    bank: Annotated[str | None, typer.Option(help="Bank adapter's JSON feed URL.")] = None,
    paypal_key: Annotated[
        Path | None, typer.Option(help="RSA key (PEM) the PayPal webhooks are signed with.")
    ] = None,
    paypal_cert_url: Annotated[
        str | None, typer.Option(help="https URL of that key's certificate.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the traffic (same seed, same events).")] = 0,
    concurrency: Annotated[
        int, typer.Option(min=1, max=4096, help="Requests in flight at most.")
    ] = 16,
) -> None:
    """Send realistic signed webhooks with fraud patterns mixed in; print a summary."""
    import asyncio

    from sysmonstm.cli import _run, _settings, err, out
    from sysmonstm.domains.payments.simulate import SimOptions, Simulator
    from sysmonstm.errors import ConfigError

    settings = _settings()
    try:
        chosen = targets(
            settings,
            {"stripe": stripe, "paypal": paypal, "bank": bank},
            paypal_key,
            paypal_cert_url,
        )
        opts = SimOptions(
            rate=rate,
            duration_s=duration,
            count=count,
            seed=seed,
            concurrency=concurrency,
            currencies=tuple(sorted(settings.payments.rates)),
        )
        sim = Simulator(opts, chosen)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    out.print(
        f"sending {rate:g} webhooks/s to " + ", ".join(f"{k} {t.url}" for k, t in chosen.items())
    )

    async def run(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        task = asyncio.create_task(sim.run(stop))
        with out.status("starting") as status:  # progress, on a terminal
            while not task.done():
                await asyncio.wait({task}, timeout=1.0)
                s, elapsed = sim.summary, max(loop.time() - began, 1e-3)
                status.update(
                    f"sent {s.total} ({len(s.accepted)} accepted), {s.total / elapsed:.0f}/s"
                )
        for line in task.result().lines():
            out.print(line, highlight=False)

    _run(run)
