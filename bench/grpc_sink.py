"""The trivial ingest server of the gRPC ceiling: parse every batch, ack it, keep nothing.

It serves ``sysmonstm.v1.MetricsIngest/Stream`` (or, with ``--domain deskmeter``,
``sysmonstm.v1.DeskmeterIngest/Stream``) with the aggregator's own server options. Each
request is parsed with ``MetricBatch.FromString`` (``DeskBatch.FromString``) as the
aggregator does and answered at once with ``Ack(stored_through=n)``, ``n`` being the number
of batches read on that stream so far, so the load generator's window works the same as
against the aggregator (whose sequences are 1, 2, 3, ... in the benchmark). With
``--ack-every N`` it acks the first batch, every Nth and the last, as the aggregator acks a
flush of many small batches at once.

Run: ``python -m bench.grpc_sink [--listen 127.0.0.1:0] [--domain metrics|deskmeter]
[--ack-every 1]``. It prints one JSON line ``{"event": "sink listening", "port": N}`` when
ready and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
from collections.abc import Callable

import grpc

from sysmonstm.config import AggregatorSettings
from sysmonstm.services.aggregator import _grpc_options
from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.deskmeter_pb2 import DeskBatch
from sysmonstm.v1.metrics_pb2 import MetricBatch

SERVICE = "sysmonstm.v1.MetricsIngest"
#: domain -> (service, parser of one batch)
DOMAINS: dict[str, tuple[str, Callable[[bytes], object]]] = {
    "metrics": (SERVICE, MetricBatch.FromString),
    "deskmeter": ("sysmonstm.v1.DeskmeterIngest", DeskBatch.FromString),
}


async def _stream(
    _requests: object,
    context: grpc.aio.ServicerContext[bytes, Ack],
    parse: Callable[[bytes], object] = MetricBatch.FromString,
    ack_every: int = 1,
) -> None:
    count = 0
    while True:
        data: object = await context.read()
        if data is grpc.aio.EOF:
            if count % ack_every:
                await context.write(Ack(stored_through=count))
            return
        assert isinstance(data, bytes)
        parse(data)
        count += 1
        if count % ack_every == 0 or count == 1:  # the first: load generators wait for it
            await context.write(Ack(stored_through=count))


async def serve(listen: str, domain: str = "metrics", ack_every: int = 1) -> None:
    options = _grpc_options(AggregatorSettings().max_message_bytes)
    server = grpc.aio.server(options=options)
    service, parse = DOMAINS[domain]
    rpc = grpc.stream_stream_rpc_method_handler(
        functools.partial(_stream, parse=parse, ack_every=ack_every),
        request_deserializer=lambda b: b,
        response_serializer=Ack.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {"Stream": rpc}),)
    )
    port = server.add_insecure_port(listen)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"event": "sink listening", "port": port}), flush=True)
    await stop.wait()
    await server.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--domain", choices=sorted(DOMAINS), default="metrics")
    parser.add_argument("--ack-every", type=int, default=1, help="ack every Nth batch")
    a = parser.parse_args()
    asyncio.run(serve(a.listen, a.domain, max(1, a.ack_every)))


if __name__ == "__main__":
    main()
