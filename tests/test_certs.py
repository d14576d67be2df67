"""``sysmonstm certs``: what it makes carries mutual TLS to the real aggregator, and only that."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from sysmonstm.certs import Kind, issue, new_ca
from sysmonstm.cli_certs import certs_app
from sysmonstm.domains.metrics.collector import CollectorOptions, run_collector
from sysmonstm.errors import ConfigError
from sysmonstm.events.testing import Capture
from sysmonstm.transport.source import ClientTls
from sysmonstm.transport.tls import channel_credentials
from sysmonstm.v1.common_pb2 import Ack
from tests.aggregator_fixtures import aggregator_settings, metric_batch, running_aggregator

HEALTH_SCRIPT = Path(__file__).parent.parent / "deploy" / "sysmonstm-grpc-health"


def certs(*args: str | Path) -> str:
    """Run ``sysmonstm certs ARGS``; its output, after checking it succeeded."""
    result = CliRunner().invoke(certs_app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def umask_0() -> Iterator[None]:
    """The loosest umask, so modes are the module's doing, not the environment's."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made one by one."""
    d = tmp_path / "pki"
    certs("ca", "--out", d)
    certs("server", "agg.test", "--san", "127.0.0.1", "--san", "localhost", "--out", d)
    certs("client", "box-1", "--out", d)
    return d


def _tls(d: Path) -> dict[str, str]:
    return {
        "cert": str(d / "server-agg.test.pem"),
        "key": str(d / "server-agg.test.key"),
        "ca": str(d / "ca.pem"),
    }


async def _stream_one(address: str, creds: grpc.ChannelCredentials, machine: str) -> None:
    async with grpc.aio.secure_channel(address, creds) as channel:
        call = channel.stream_stream(
            "/sysmonstm.v1.MetricsIngest/Stream",
            request_serializer=lambda b: b,
            response_deserializer=Ack.FromString,
        )
        async for _ in call(iter([metric_batch(machine, 1).SerializeToString()]), timeout=10):
            pass


async def test_the_collector_streams_over_mutual_tls_with_certificates_from_sysmonstm_certs(
    tmp_path: Path, pki: Path
) -> None:
    settings = aggregator_settings(tmp_path / "data", tls=_tls(pki))
    async with running_aggregator(settings) as core:
        stop = asyncio.Event()
        opts = CollectorOptions(
            aggregators=(settings.aggregator.listen,),
            spool_dir=tmp_path / "spool",
            interval_s=0.2,
            machine_id="certs-box",
            tls=ClientTls(
                ca=pki / "ca.pem", cert=pki / "client-box-1.pem", key=pki / "client-box-1.key"
            ),
        )
        task = asyncio.create_task(run_collector(opts, stop))
        stored = await Capture.start(core.bus, "metrics.certs-box")
        await stored.wait_for(lambda _e: True, timeout=20)
        await stored.close()
        stop.set()
        await task
        assert await core.warm.stored_through("metrics", "certs-box") > 0


async def test_a_client_certificate_from_another_ca_is_refused(tmp_path: Path, pki: Path) -> None:
    other = tmp_path / "other"
    certs("dev", "--out", other, "--client", "intruder")
    settings = aggregator_settings(tmp_path / "data", tls=_tls(pki))
    address = settings.aggregator.listen
    async with running_aggregator(settings) as core:
        foreign = channel_credentials(
            ca=pki / "ca.pem", cert=other / "client-intruder.pem", key=other / "client-intruder.key"
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _stream_one(address, foreign, "intruder")
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert await core.warm.stored_through("metrics", "intruder") == 0


async def test_a_client_that_trusts_another_ca_refuses_the_aggregator(
    tmp_path: Path, pki: Path
) -> None:
    other = tmp_path / "other"
    certs("dev", "--out", other, "--client", "box-1")
    settings = aggregator_settings(tmp_path / "data", tls=_tls(pki))
    async with running_aggregator(settings) as core:
        creds = channel_credentials(
            ca=other / "ca.pem", cert=pki / "client-box-1.pem", key=pki / "client-box-1.key"
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _stream_one(settings.aggregator.listen, creds, "misled")
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert await core.warm.stored_through("metrics", "misled") == 0


def _health(address: str, *tls: str | Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(HEALTH_SCRIPT), "--addr", address, "--timeout", "3"]
    return subprocess.run(
        [*cmd, *map(str, tls)], capture_output=True, text=True, timeout=30, check=False
    )


async def test_the_deploy_health_check_says_serving_over_mutual_tls_and_fails_without_a_cert(
    tmp_path: Path,
) -> None:
    d = tmp_path / "pki"
    certs("dev", "--out", d, "--server", "agg.test", "--san", "127.0.0.1", "--client", "ops")
    settings = aggregator_settings(tmp_path / "data", tls=_tls(d))
    address = settings.aggregator.listen
    async with running_aggregator(settings):
        ok, no_cert = await asyncio.gather(
            asyncio.to_thread(
                _health,
                address,
                *("--tls-ca-cert", d / "ca.pem"),
                *("--tls-client-cert", d / "client-ops.pem"),
                *("--tls-client-key", d / "client-ops.key"),
            ),
            asyncio.to_thread(_health, address, "--tls-ca-cert", d / "ca.pem"),
        )
    assert (ok.returncode, ok.stdout.strip()) == (0, "status: SERVING"), ok.stderr
    assert no_cert.returncode in (2, 3), no_cert.stdout


def test_keys_are_0600_and_certificates_0644_whatever_the_umask(
    tmp_path: Path, umask_0: None
) -> None:
    d = tmp_path / "pki"
    certs("dev", "--out", d, "--server", "m1,m2", "--client", "m1", "--client", "m3")
    names = {p.name: stat.S_IMODE(p.stat().st_mode) for p in d.iterdir()}
    assert names == {
        "ca.pem": 0o644,
        "ca.key": 0o600,
        **{f"{kind}-{n}.pem": 0o644 for kind, n in [("server", "m1"), ("server", "m2")]},
        **{f"{kind}-{n}.key": 0o600 for kind, n in [("server", "m1"), ("server", "m2")]},
        **{f"client-{n}.pem": 0o644 for n in ("m1", "m3")},
        **{f"client-{n}.key": 0o600 for n in ("m1", "m3")},
    }
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_no_key_is_ever_printed(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    said = certs("dev", "--out", d, "--server", "m1", "--client", "m3")
    said += certs("server", "m2", "--out", d)
    said += certs("client", "m4", "--out", d)
    assert "PRIVATE KEY" not in said
    for key in d.glob("*.key"):
        body = key.read_text().splitlines()[1:-1]
        assert body
        assert not any(line in said for line in body)


def test_nothing_is_overwritten_without_force(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    certs("ca", "--out", d)
    certs("client", "m3", "--out", d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    runner = CliRunner()
    for args in (["ca"], ["client", "m3"], ["dev", "--server", "new", "--client", "m3"]):
        result = runner.invoke(certs_app, [*args, "--out", str(d)])
        assert result.exit_code == 1
        assert "--force" in result.output
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before  # not even server-new

    certs("client", "m3", "--out", d, "--force")
    assert (d / "client-m3.key").read_bytes() != before["client-m3.key"]
    assert stat.S_IMODE((d / "client-m3.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in d.iterdir()) == sorted(before)  # no temporary files left


def test_a_missing_ca_or_a_bad_name_is_a_clear_error(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(certs_app, ["server", "m1", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "sysmonstm certs ca" in result.output
    certs("ca", "--out", tmp_path)
    for args in (["server", "../m1"], ["server", "m1", "--san", "not a name"]):
        result = runner.invoke(certs_app, [*args, "--out", str(tmp_path)])
        assert result.exit_code == 1
        assert "error" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key", "ca.pem"]


def test_a_leaf_never_outlives_its_ca_and_names_what_it_is_for() -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = new_ca(days=10)
    server = issue(ca, "m1", Kind.SERVER, ["10.0.0.5", "*.m1.example"], days=400)
    client = issue(ca, "m3", Kind.CLIENT)
    assert server.cert.not_valid_after_utc == ca.cert.not_valid_after_utc
    sans = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(v) for v in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert sans.get_values_for_type(x509.DNSName) == ["m1", "*.m1.example"]
    for leaf, usage in ((server, "SERVER_AUTH"), (client, "CLIENT_AUTH")):
        eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [getattr(ExtendedKeyUsageOID, usage)]
    with pytest.raises(ConfigError, match="neither an IP nor a DNS name"):
        issue(ca, "m1", Kind.SERVER, ["bad_name"])


def test_sysmonstm_certs_is_a_command_of_the_installed_cli(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    done = subprocess.run(
        [Path(sys.executable).with_name("sysmonstm"), "certs", "dev", "--out", d, "--server", "m1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in d.iterdir()) == [
        "ca.key",
        "ca.pem",
        "server-m1.key",
        "server-m1.pem",
    ]
