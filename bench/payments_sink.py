"""``python -m bench.payments_sink --port P --secret S``: the webhook receive ceiling's server.

A bare uvicorn app (Starlette, no sysmonstm service around it) that does what every adapter
must do before anything else: read the raw body, verify its ``Stripe-Signature`` with
``stripe_sig.verify``, parse the JSON, answer 200. What the payments benchmark measures
against it is how fast this machine receives signed webhooks at all, with the same load
generator that drives the real adapter.
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sysmonstm.domains.payments import stripe_sig


def app(secret: str) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            stripe_sig.verify(body, request.headers.get(stripe_sig.HEADER, ""), [secret])
        except stripe_sig.SignatureError as exc:
            return JSONResponse({"error": {"code": exc.error_code}}, status_code=400)
        return JSONResponse({"received": json.loads(body)["id"]})

    return Starlette(routes=[Route("/webhooks/stripe", receive, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.payments_sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    a = parser.parse_args()
    uvicorn.run(
        app(a.secret),
        host="127.0.0.1",
        port=a.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        loop="asyncio",  # as the adapter runs (inside ``sysmonstm``'s own asyncio loop)
    )


if __name__ == "__main__":
    main()
