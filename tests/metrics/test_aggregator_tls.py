"""The aggregator over mutual TLS, with the real collector; its gRPC health service."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sysmonstm.domains.metrics.collector import CollectorOptions, run_collector
from sysmonstm.events.testing import Capture
from sysmonstm.transport.source import ClientTls
from sysmonstm.transport.tls import channel_credentials
from sysmonstm.v1.common_pb2 import Ack
from tests.aggregator_fixtures import aggregator_settings, metric_batch, running_aggregator
from tests.pki import make_pki

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


async def test_a_collector_streams_over_mutual_tls_and_a_client_without_cert_is_refused(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = {
        "cert": str(pki / "server.pem"),
        "key": str(pki / "server.key"),
        "ca": str(pki / "ca.pem"),
    }
    settings = aggregator_settings(tmp_path / "data", tls=tls)
    address = settings.aggregator.listen
    async with running_aggregator(settings) as core:
        stop = asyncio.Event()
        opts = CollectorOptions(
            aggregators=(address,),
            spool_dir=tmp_path / "spool",
            interval_s=0.2,
            machine_id="tls-box",
            tls=ClientTls(ca=pki / "ca.pem", cert=pki / "client.pem", key=pki / "client.key"),
        )
        task = asyncio.create_task(run_collector(opts, stop))
        stored = await Capture.start(core.bus, "metrics.tls-box")
        await stored.wait_for(lambda _e: True, timeout=20)
        await stored.close()
        stop.set()
        await task

        no_cert = channel_credentials(ca=pki / "ca.pem")
        async with grpc.aio.secure_channel(address, no_cert) as channel:
            call = channel.stream_stream(
                "/sysmonstm.v1.MetricsIngest/Stream",
                request_serializer=lambda b: b,
                response_deserializer=Ack.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                async for _ in call(iter([metric_batch("intruder", 1).SerializeToString()])):
                    pass
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert await core.warm.stored_through("metrics", "intruder") == 0


async def test_the_standard_health_service_says_serving(tmp_path: Path) -> None:
    settings = aggregator_settings(tmp_path)
    async with (
        running_aggregator(settings),
        grpc.aio.insecure_channel(settings.aggregator.listen) as channel,
    ):
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="")
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
