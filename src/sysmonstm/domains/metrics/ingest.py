"""Metrics ingest: MetricBatch on the wire → validated SeriesBatch → warm, hot, bus."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sysmonstm.errors import InvalidInputError
from sysmonstm.events.topics import topic_token
from sysmonstm.pipeline import Pipeline, PipelineOptions, PublishPoint
from sysmonstm.store.model import SeriesBatch, SourceInfo
from sysmonstm.store.series import NAME_RE, parse_series
from sysmonstm.transport.identity import MACHINE_ID as _MACHINE_ID
from sysmonstm.transport.stream_server import AckPacing, IngestStream
from sysmonstm.v1.metrics_pb2 import MetricBatch

if TYPE_CHECKING:
    import grpc

    from sysmonstm.runtime import Core

DOMAIN = "metrics"
SERVICE = "sysmonstm.v1.MetricsIngest"
_MAX_SEQ = 2**63 - 1


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class MetricLimits:
    """What one batch and one source may hold; beyond it a batch is refused whole."""

    max_series_per_batch: int = 10_000
    max_frames: int = 3_600
    max_samples: int = 1_000_000
    max_series_per_source: int = 10_000
    max_labels: int = 32
    max_future_ms: int = 300_000
    max_past_ms: int = 7 * 86_400_000


def bus_payload(batch: SeriesBatch) -> dict[str, object]:
    """What a stored batch looks like on the bus (``metrics.<machine>``) and to browsers."""
    return {
        "source": batch.source.id,
        "host": batch.source.name,
        "labels": dict(batch.source.labels),
        "seq": batch.sequence,
        "interval_ms": batch.interval_ms,
        "series": list(batch.series),
        "times_ms": batch.times_ms.tolist(),
        "values": batch.values.tolist(),
    }


def metrics_topic(machine_id: str) -> str:
    return f"{DOMAIN}.{topic_token(machine_id)}"


def batch_event_id(batch: SeriesBatch) -> str:
    """The bus event id of a batch: the same every time that batch is published (a source
    sends a batch again when the aggregator died before acknowledging it)."""
    return f"{DOMAIN}:{batch.source.id}:{batch.sequence}"


class MetricStages:
    """The metrics domain's pipeline stages."""

    def __init__(
        self, core: Core, limits: MetricLimits | None = None, now_ms: Callable[[], int] = _wall_ms
    ) -> None:
        self.core = core
        self.limits = limits or MetricLimits()
        self._now_ms = now_ms
        self._known: dict[str, set[str]] = {}
        self._checked: dict[str, tuple[str, ...]] = {}  # each source's last series list

    async def validate(self, raw: object) -> SeriesBatch:
        if not isinstance(raw, MetricBatch):
            raise InvalidInputError("expected a MetricBatch")
        lim = self.limits
        source = self._source(raw)
        if not 1 <= raw.sequence <= _MAX_SEQ:
            raise InvalidInputError(f"sequence must be within 1..{_MAX_SEQ}")
        n_series, n_frames = len(raw.series), len(raw.frames)
        if not 1 <= n_series <= lim.max_series_per_batch:
            raise InvalidInputError(
                f"a batch holds 1..{lim.max_series_per_batch} series, not {n_series}"
            )
        if not 1 <= n_frames <= lim.max_frames:
            raise InvalidInputError(f"a batch holds 1..{lim.max_frames} frames, not {n_frames}")
        if n_series * n_frames > lim.max_samples:
            raise InvalidInputError(
                f"{n_series * n_frames} samples in one batch; the limit is {lim.max_samples}",
                code="RESOURCE_EXHAUSTED",
            )
        series = tuple(raw.series)
        # a source sends the same series list batch after batch: checked once (no duplicate,
        # every key parsed and counted against the limit), then compared in one C call
        checked = self._checked.get(source.id) == series
        if not checked and len(set(series)) != n_series:
            raise InvalidInputError("a series appears twice in the batch")
        for i, frame in enumerate(raw.frames):
            if len(frame.values) != n_series:
                raise InvalidInputError(
                    f"frame {i} has {len(frame.values)} values for {n_series} series"
                )
        times = np.fromiter((f.time_unix_ms for f in raw.frames), np.int64, n_frames)
        values = np.array([f.values for f in raw.frames], dtype=np.float64)
        self._check_times(times)
        finite = np.isfinite(values)
        if not finite.all():
            i, j = (int(x) for x in np.argwhere(~finite)[0])
            raise InvalidInputError(
                f"frame {i}, series {series[j]!r}: {values[i, j]} is not a finite number"
            )
        if not checked:
            await self._check_series(source, series)
            self._checked[source.id] = series
        interval = raw.interval_ms or 1000
        if not 10 <= interval <= 86_400_000:
            raise InvalidInputError("interval_ms must be within 10..86400000")
        return SeriesBatch(source, raw.sequence, series, times, values, interval)

    def _source(self, raw: MetricBatch) -> SourceInfo:
        if not raw.HasField("source") or not raw.source.machine_id:
            raise InvalidInputError("source.machine_id is required")
        src = raw.source
        if not _MACHINE_ID.fullmatch(src.machine_id):
            raise InvalidInputError(
                "source.machine_id must be 1..128 of [A-Za-z0-9._:-], starting alphanumeric"
            )
        if len(src.hostname) > 253 or not src.hostname.isprintable():
            raise InvalidInputError("source.hostname must be printable, at most 253 characters")
        if len(src.labels) > self.limits.max_labels:
            raise InvalidInputError(f"at most {self.limits.max_labels} labels")
        for k, v in src.labels.items():
            if not NAME_RE.fullmatch(k) or len(v) > 256:
                raise InvalidInputError(f"label {k[:40]!r}: bad key or value over 256 characters")
        return SourceInfo(
            DOMAIN,
            src.machine_id,
            src.hostname or src.machine_id,
            tuple(sorted(src.labels.items())),
        )

    def _check_times(self, times: np.ndarray) -> None:
        now = self._now_ms()
        lo, hi = int(times.min()), int(times.max())
        if hi > now + self.limits.max_future_ms:
            raise InvalidInputError(
                f"time {hi} ms is more than {self.limits.max_future_ms // 1000} s in the future"
            )
        if lo < now - self.limits.max_past_ms:
            raise InvalidInputError(f"time {lo} ms is older than the raw retention allows")
        if len(times) > 1 and len(set(times.tolist())) != len(times):
            raise InvalidInputError("two frames of one batch have the same time")

    async def _check_series(self, source: SourceInfo, series: tuple[str, ...]) -> None:
        known = self._known.get(source.id)
        if known is None:
            known = set(await self.core.warm.series(DOMAIN, source.id))
            self._known[source.id] = known
        new = [s for s in series if s not in known]
        if not new:
            return
        for key in new:
            parse_series(key)
        limit = self.limits.max_series_per_source
        if len(known) + len(new) > limit:
            raise InvalidInputError(
                f"source {source.id!r} would have {len(known) + len(new)} series; the limit is "
                f"{limit} (a tag with unbounded values?)",
                code="RESOURCE_EXHAUSTED",
            )
        known.update(new)

    def normalize(self, batch: SeriesBatch) -> SeriesBatch:
        if len(batch.times_ms) > 1 and (np.diff(batch.times_ms) < 0).any():
            order = np.argsort(batch.times_ms, kind="stable")
            return SeriesBatch(
                batch.source,
                batch.sequence,
                batch.series,
                batch.times_ms[order],
                batch.values[order],
                batch.interval_ms,
            )
        return batch

    def identity(self, batch: SeriesBatch) -> tuple[str, int]:
        return batch.source.id, batch.sequence

    def size(self, batch: SeriesBatch) -> int:
        return batch.size

    async def stored_through(self, source: str) -> int:
        return await self.core.warm.stored_through(DOMAIN, source)

    async def store(self, batches: Sequence[SeriesBatch]) -> Sequence[SeriesBatch]:
        stored = await self.core.warm.write(batches)
        await self.core.hot.write(stored)
        return stored

    async def publish(self, batches: Sequence[SeriesBatch]) -> None:
        for batch in batches:
            await self.core.bus.publish(
                metrics_topic(batch.source.id),
                bus_payload(batch),
                source=batch.source.id,
                event_id=batch_event_id(batch),
            )


class MetricsIngest:
    """The running metrics ingest: a pipeline and the gRPC handler feeding it."""

    def __init__(self, core: Core) -> None:
        agg = core.settings.aggregator
        limits = MetricLimits(
            max_series_per_source=agg.max_series_per_source,
            max_future_ms=int(agg.max_future_s * 1000),
            max_past_ms=int(agg.max_past_s * 1000),
        )
        self.stages = MetricStages(core, limits)
        self.pipeline: Pipeline[SeriesBatch] = Pipeline(
            self.stages,
            PipelineOptions(
                queue_batches=agg.queue_batches,
                flush_items=agg.flush_samples,
                flush_age_s=agg.flush_age_s,
                # live views see a batch when it is accepted, not after the warm tier's
                # batching, commit and rollups (docs/benchmarks.md, latency)
                publish=PublishPoint.ACCEPTED,
            ),
        )
        self.stream = IngestStream(
            self.pipeline,
            MetricBatch.FromString,
            "MetricBatch",
            AckPacing(every_s=agg.metrics_ack_every_s),
        )

    @property
    def handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        return [self.stream.handler(SERVICE)]

    async def run(self) -> None:
        await self.pipeline.run()

    def stop(self) -> None:
        self.pipeline.stop()
