"""The trivial ingest server of the gRPC ceiling: parse every batch, ack it, keep nothing.

It serves ``sysmonstm.v1.MetricsIngest/Stream`` with the aggregator's own server options.
Each request is parsed with ``MetricBatch.FromString`` (as the aggregator does) and answered
at once with ``Ack(stored_through=n)``, ``n`` being the number of batches read on that
stream so far, so the load generator's window works the same as against the aggregator
(whose sequences are 1, 2, 3, ... in the benchmark).

Run: ``python -m bench.grpc_sink [--listen 127.0.0.1:0]``. It prints one JSON line
``{"event": "sink listening", "port": N}`` when ready and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import grpc

from sysmonstm.config import AggregatorSettings
from sysmonstm.services.aggregator import _grpc_options
from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.metrics_pb2 import MetricBatch

SERVICE = "sysmonstm.v1.MetricsIngest"


async def _stream(_requests: object, context: grpc.aio.ServicerContext[bytes, Ack]) -> None:
    count = 0
    while True:
        data: object = await context.read()
        if data is grpc.aio.EOF:
            return
        assert isinstance(data, bytes)
        MetricBatch.FromString(data)
        count += 1
        await context.write(Ack(stored_through=count))


async def serve(listen: str) -> None:
    options = _grpc_options(AggregatorSettings().max_message_bytes)
    server = grpc.aio.server(options=options)
    rpc = grpc.stream_stream_rpc_method_handler(
        _stream, request_deserializer=lambda b: b, response_serializer=Ack.SerializeToString
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Stream": rpc}),)
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
    asyncio.run(serve(parser.parse_args().listen))


if __name__ == "__main__":
    main()
