"""What a domain hands the core: its gRPC ingest, its REST routes, its rule inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import grpc
    from fastapi import APIRouter

    from sysmonstm.events.envelope import Envelope
    from sysmonstm.rules.model import Observation
    from sysmonstm.runtime import Core

    Extractor = Callable[[Envelope], Iterable[Observation]]


class Ingest(Protocol):
    """A domain's running ingest: gRPC handlers feeding its pipeline."""

    @property
    def handlers(self) -> Sequence[grpc.GenericRpcHandler]: ...

    async def run(self) -> None:
        """Write what arrives until ``stop`` was called and everything queued is stored."""
        ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain's plug-ins. Every callable receives the wired ``Core``.

    ``ingest`` builds the domain's pipeline and the gRPC handlers the aggregator mounts;
    ``api_routers`` the FastAPI routers the gateway mounts under ``/api/v1``;
    ``root_routers`` routers the gateway mounts as they are, at their own prefix (an API
    another product defines, such as ActivityWatch's ``/api/0``);
    ``extractors()`` turn the domain's bus events into rule observations, keyed by topic
    pattern (a callable, so importing a domain stays cheap); ``default_rules`` are TOML files
    loaded unless turned off.
    """

    name: str
    ingest: Callable[[Core], Ingest] | None = None
    api_routers: Callable[[Core], Sequence[APIRouter]] = lambda core: ()
    root_routers: Callable[[Core], Sequence[APIRouter]] = lambda core: ()
    extractors: Callable[[], Mapping[str, Extractor]] = dict
    default_rules: tuple[Path, ...] = ()
