"""TLS credentials: clear errors for bad files, TLS and mutual TLS on a real stream."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from sysmonstm.errors import ConfigError
from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.spool import Spool
from sysmonstm.transport.tls import channel_credentials, server_credentials
from sysmonstm.v1.metrics_pb2 import MetricBatch
from tests.pki import make_pki
from tests.transport.ingest_peer import IngestPeer, eventually

METHOD = "/sysmonstm.v1.MetricsIngest/Stream"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def mtls_peer(pki: Path) -> AsyncIterator[IngestPeer]:
    creds = server_credentials(pki / "server.pem", pki / "server.key", client_ca=pki / "ca.pem")
    peer = await IngestPeer(credentials=creds).start()
    yield peer
    await peer.stop()


async def deliver(spool: Spool, peer: IngestPeer, creds: grpc.ChannelCredentials) -> None:
    """Send three batches over ``creds`` and wait until the peer has them all."""
    for _ in range(3):
        seq = spool.next_sequence()
        spool.append(seq, MetricBatch(sequence=seq).SerializeToString())
    sender = StreamSender(
        spool,
        [peer.address],
        METHOD,
        credentials=creds,
        options=SenderOptions(backoff_initial_s=0.02, stop_grace_s=1.0),
    )
    task = asyncio.create_task(sender.run())
    try:
        await eventually(lambda: spool.pending_count == 0)
    finally:
        sender.stop()
        await task


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TLS key '.*nope\.key' cannot be read"):
        server_credentials(tmp_path / "nope.pem", tmp_path / "nope.key")
    with pytest.raises(ConfigError, match="CA"):
        channel_credentials(ca=tmp_path / "missing-ca.pem")


def test_a_file_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x00\x01 not a certificate")
    with pytest.raises(ConfigError, match="not a PEM file"):
        channel_credentials(ca=junk)


def test_a_client_certificate_needs_its_key(pki: Path) -> None:
    with pytest.raises(ConfigError, match="together"):
        channel_credentials(ca=pki / "ca.pem", cert=pki / "client.pem")


async def test_mutual_tls_delivers_with_a_client_certificate(
    tmp_path: Path, pki: Path, mtls_peer: IngestPeer
) -> None:
    spool = Spool(tmp_path / "spool")
    try:
        creds = channel_credentials(pki / "ca.pem", pki / "client.pem", pki / "client.key")
        await deliver(spool, mtls_peer, creds)
    finally:
        spool.close()
    assert len(mtls_peer.stored) == 3


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    tmp_path: Path, pki: Path, mtls_peer: IngestPeer
) -> None:
    spool = Spool(tmp_path / "spool")
    seq = spool.next_sequence()
    spool.append(seq, MetricBatch(sequence=seq).SerializeToString())
    sender = StreamSender(
        spool,
        [mtls_peer.address],
        METHOD,
        credentials=channel_credentials(pki / "ca.pem"),
        options=SenderOptions(backoff_initial_s=0.02, stop_grace_s=0.1),
    )
    task = asyncio.create_task(sender.run())
    try:
        await eventually(lambda: sender.status.reconnects >= 3)
    finally:
        sender.stop()
        await task
        spool.close()
    assert mtls_peer.received == []
    assert mtls_peer.streams == 0


async def test_server_only_tls_delivers_to_a_client_trusting_the_ca(
    tmp_path: Path, pki: Path
) -> None:
    peer = await IngestPeer(
        credentials=server_credentials(pki / "server.pem", pki / "server.key")
    ).start()
    spool = Spool(tmp_path / "spool")
    try:
        await deliver(spool, peer, channel_credentials(ca=pki / "ca.pem"))
    finally:
        spool.close()
        await peer.stop()
    assert len(peer.stored) == 3
