"""`GET /metrics`: the process's metrics in the Prometheus text format
(docs/operations.md, "Monitoring").

Everything is read when Prometheus scrapes, by one custom collector: the hot path only
adds to plain integers (services/metrics.py) and this module turns them into metric
families. What costs a database query (the job queue, the stream head) or a walk over
every connection (the fan-out queues) is read at most once per `metrics_cache_seconds`,
whatever the number of scrapes, and concurrent scrapes share one refresh.

One process per node, each scraped on its own port: `tidings serve` is one process
(uvicorn without worker processes, the worker role's runners are tasks in it), so
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR: a memory-mapped file
per process and metric, an increment 3x slower, no custom collectors, no process
metrics) would buy nothing. Several processes on one host are several targets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

import tidings
from tidings.core.errors import Forbidden, TidingsError, Unauthenticated
from tidings.core.jobs import QueueStats
from tidings.core.webhooks import parse_networks
from tidings.services.backup import BackupStatus
from tidings.services.metrics import Histogram, Tally
from tidings.store.sql.store import SqlStore

if TYPE_CHECKING:
    from tidings.app.connections import ConnectionGuard
    from tidings.app.container import Container
    from tidings.gateway.hub import Hub

log = structlog.get_logger(__name__)

# Headers a proxy adds: a request that carries one came through a proxy, and is not
# taken for the loopback client it seems to be.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


@dataclass(slots=True)
class _Slow:
    """What the collector reads at most once per cache period."""

    at: float = float("-inf")  # time.monotonic() of the last refresh
    head: int | None = None
    jobs: QueueStats | None = None
    queued: int = 0
    queue_max: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # what could not be read
    backup: BackupStatus | None = None  # the newest successful scheduled backup


class Metrics:
    """The /metrics endpoint of one process: who may read it, and what it says."""

    def __init__(
        self,
        container: Container,
        hub: Hub | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = container.settings
        self.container = container
        self.hub = hub
        self.roles = sorted(set(settings.roles))
        self.cache_seconds = settings.metrics_cache_seconds
        self.networks = parse_networks(settings.metrics_networks)
        token = settings.metrics_token
        self._token_digest = (
            None if token is None else hashlib.sha256(token.get_secret_value().encode()).digest()
        )
        self.queue_limit = settings.ws_send_queue
        self.guard: ConnectionGuard | None = None  # set when the server is configured
        self._clock = clock
        self._slow = _Slow()
        self._refreshing: asyncio.Task[None] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_TidingsCollector(self))
        ProcessCollector(registry=self.registry)  # CPU, memory, open files of this process
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    # --- access ------------------------------------------------------------------
    def refusal(self, client: str | None, headers: Mapping[str, str]) -> TidingsError | None:
        """Why this request may not read the metrics (None: it may). The token, when one
        is set, is accepted from anywhere; without it, a client in `metrics_networks`
        that did not come through a proxy."""
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if self._token_digest is not None and scheme.lower() == "bearer" and credentials:
            given = hashlib.sha256(credentials.strip().encode()).digest()
            if hmac.compare_digest(given, self._token_digest):
                return None
            return Unauthenticated("wrong metrics token")
        proxied = any(name in headers for name in FORWARDING_HEADERS)
        if client and not proxied and self._allowed(client):
            return None
        if self._token_digest is not None:
            return Unauthenticated("missing Authorization: Bearer <metrics_token> header")
        return Forbidden(
            "/metrics answers only clients in metrics_networks (default: loopback, not "
            "through a proxy); set metrics_token to scrape from elsewhere"
        )

    def _allowed(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    # --- exposition ----------------------------------------------------------------
    content_type = CONTENT_TYPE_PLAIN_0_0_4  # the classic text format: every Prometheus reads it

    async def render(self) -> bytes:
        """The exposition, the slow values refreshed first if they are older than the
        cache period (one refresh for every scrape waiting on it)."""
        if self._clock() - self._slow.at >= self.cache_seconds:
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
            await asyncio.shield(self._refreshing)
        return generate_latest(self.registry)

    async def _refresh(self) -> None:
        slow = _Slow(at=self._clock(), failures=dict(self._slow.failures))
        services = self.container.services
        if self.hub is not None:
            try:
                slow.head = await services.sync.head()
            except Exception as exc:  # noqa: BLE001 - reported as a failure, not raised
                self._failed(slow, "stream_head", exc)
            for conn in self.hub.connections:
                depth = conn.queue_depth
                slow.queued += depth
                slow.queue_max = max(slow.queue_max, depth)
        if "worker" in self.roles:
            try:
                slow.jobs = await services.jobs.stats(None)
            except Exception as exc:  # noqa: BLE001 - reported as a failure, not raised
                self._failed(slow, "jobs", exc)
            try:
                slow.backup = await services.backups.last_success(scheduled=True)
            except Exception as exc:  # noqa: BLE001 - reported as a failure, not raised
                self._failed(slow, "backup", exc)
                slow.backup = self._slow.backup  # what it was: no false "stale"
        self._slow = slow

    @staticmethod
    def _failed(slow: _Slow, what: str, exc: Exception) -> None:
        slow.failures[what] = slow.failures.get(what, 0) + 1
        log.warning("metrics_read_failed", what=what, error=f"{type(exc).__name__}: {exc}"[:200])


def _tally(
    name: str, documentation: str, label: str, tally: Tally | Mapping[str, int]
) -> CounterMetricFamily:
    values = tally.values if isinstance(tally, Tally) else tally
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    buckets = [
        ("+Inf" if bound == float("inf") else repr(float(bound)), count)
        for bound, count in histogram.cumulative()
    ]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.total)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _TidingsCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterable[Metric]:
        yield from self._process()
        yield from self._sends()
        if self.m.hub is not None:
            yield from self._gateway(self.m.hub)
        yield from self._store()
        yield from self._bus()
        if "worker" in self.m.roles:
            yield from self._jobs()
            yield from self._backups()

    def _process(self) -> Iterator[Metric]:
        m = self.m
        info = GaugeMetricFamily(
            "tidings_build_info", "This process: version and roles", labels=["version", "roles"]
        )
        info.add_metric([tidings.__version__, ",".join(m.roles)], 1)
        yield info
        roles = GaugeMetricFamily("tidings_role", "The roles this process runs", labels=["role"])
        for role in m.roles:
            roles.add_metric([role], 1)
        yield roles
        if m.guard is not None:
            yield _gauge(
                "tidings_tcp_connections",
                "Open TCP connections of this process (HTTP and WebSocket)",
                m.guard.open,
            )
            yield _gauge(
                "tidings_tcp_connections_limit",
                "Open TCP connections this process holds at most",
                m.guard.max_connections,
            )
        data_dir = m.container.settings.data_dir
        try:
            usage = shutil.disk_usage(data_dir)
        except OSError:
            pass
        else:
            yield _gauge(
                "tidings_data_dir_free_bytes",
                "Free bytes on the file system of the data directory",
                usage.free,
            )
            yield _gauge(
                "tidings_data_dir_size_bytes",
                "Size in bytes of the file system of the data directory",
                usage.total,
            )
        failures = CounterMetricFamily(
            "tidings_metrics_read_failures",
            "Scrape-time reads that failed (the database away), by what was read",
            labels=["what"],
        )
        for what, count in sorted(m._slow.failures.items()):
            failures.add_metric([what], count)
        yield failures

    def _sends(self) -> Iterator[Metric]:
        c = self.m.container.deps.counts
        yield CounterMetricFamily(
            "tidings_sends_acknowledged",
            "Sends answered with their stored message (retries of a stored one included)",
            value=c.sends_acknowledged,
        )
        yield _tally(
            "tidings_sends_refused", "Sends refused, by error code", "code", c.sends_refused
        )
        yield _histogram(
            "tidings_commit_batch_size", "Sends per group commit", c.commit_batch_size
        )
        yield _histogram(
            "tidings_commit_duration_seconds",
            "Time of a group commit's write transaction, the wait for the write lock included",
            c.commit_seconds,
        )
        yield CounterMetricFamily(
            "tidings_commit_batch_failures",
            "Group commits whose transaction failed (each send then retried alone)",
            value=c.commit_failures,
        )
        logins = CounterMetricFamily(
            "tidings_logins", "Logins by method and outcome", labels=["method", "outcome"]
        )
        for (method, outcome), count in sorted(c.logins.items()):
            logins.add_metric([method, outcome], count)
        yield logins
        yield _tally(
            "tidings_rate_limited",
            "Requests refused by a rate limit, by action",
            "action",
            c.rate_limited,
        )
        yield _tally(
            "tidings_webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            "outcome",
            c.webhook_deliveries,
        )

    def _gateway(self, hub: Hub) -> Iterator[Metric]:
        c = self.m.container.deps.counts
        slow = self.m._slow
        authenticated = sum(len(conns) for conns in hub.by_user.values())
        connections = GaugeMetricFamily(
            "tidings_connections",
            "WebSocket connections held, by role and whether they are signed in yet",
            labels=["role", "state"],
        )
        connections.add_metric(["gateway", "authenticated"], authenticated)
        connections.add_metric(["gateway", "unauthenticated"], max(0, c.ws_open - authenticated))
        yield connections
        yield _tally(
            "tidings_ws_frames_received", "WebSocket frames received, by type", "type", c.frames_in
        )
        yield _tally(
            "tidings_ws_frames_sent",
            "WebSocket frames handed to connections, by type",
            "type",
            c.frames_out,
        )
        yield CounterMetricFamily(
            "tidings_slow_client_disconnects",
            "Connections closed because their send queue was full (they resume)",
            value=c.slow_disconnects,
        )
        yield _gauge(
            "tidings_fanout_queued_frames",
            "Frames waiting in the connections' send queues, all together",
            slow.queued,
        )
        yield _gauge(
            "tidings_fanout_queue_max_frames",
            "Frames waiting in the fullest connection's send queue",
            slow.queue_max,
        )
        yield _gauge(
            "tidings_fanout_queue_limit_frames",
            "Frames a connection may have waiting before it is closed (ws_send_queue)",
            self.m.queue_limit,
        )
        routed = hub.routed
        sequencer = hub.sequencer
        if routed is not None:
            yield _gauge(
                "tidings_event_stream_delivered_position",
                "Every committed event up to this position was routed to this gateway's "
                "connections",
                routed,
            )
        if slow.head is not None:
            yield _gauge(
                "tidings_event_stream_head_position",
                "The committed event stream's head (read at most once per cache period)",
                slow.head,
            )
        if routed is not None and slow.head is not None:
            yield _gauge(
                "tidings_event_stream_lag_events",
                "Committed events this gateway has not routed yet (head - delivered)",
                max(0, slow.head - routed),
            )
        if sequencer is not None:
            yield CounterMetricFamily(
                "tidings_event_stream_filled",
                "Events the gateway fetched from the database because the bus missed them",
                value=sequencer.filled,
            )

    def _store(self) -> Iterator[Metric]:
        store = self.m.container.store
        if not isinstance(store, SqlStore):
            return
        engine = store.engine
        in_use = GaugeMetricFamily(
            "tidings_db_pool_connections_in_use",
            "Database connections checked out of the pool",
            labels=["pool"],
        )
        size = GaugeMetricFamily(
            "tidings_db_pool_size", "Connections the pool keeps open", labels=["pool"]
        )
        pools = {"write": engine.write, "read": engine.read}
        for name, async_engine in pools.items():
            if name == "read" and async_engine is engine.write:
                continue  # one pool serves both
            pool = async_engine.pool
            checked_out = getattr(pool, "checkedout", None)
            pool_size = getattr(pool, "size", None)
            if callable(checked_out):
                in_use.add_metric([name], float(checked_out()))
            if callable(pool_size):
                size.add_metric([name], float(pool_size()))
        yield in_use
        yield size
        yield _tally(
            "tidings_db_errors",
            "Transactions that failed for the database: unreachable, or its write lock "
            "not granted in time",
            "kind",
            engine.errors,
        )

    def _bus(self) -> Iterator[Metric]:
        bus = self.m.container.bus
        yield CounterMetricFamily(
            "tidings_bus_reconnects",
            "Times the bus (Redis) connection was lost and made again",
            value=bus.reconnects,
        )
        connected = getattr(bus, "connected", True)
        yield _gauge(
            "tidings_bus_connected",
            "1 while the bus is connected (the in-process bus always is)",
            1.0 if connected else 0.0,
        )

    def _jobs(self) -> Iterator[Metric]:
        counters = self.m.container.services.jobs.counters
        runs = CounterMetricFamily(
            "tidings_job_runs",
            "Job attempts this process ran, by how they ended",
            labels=["outcome"],
        )
        runs.add_metric(["done"], counters.done)
        runs.add_metric(["retry"], counters.failed)
        runs.add_metric(["dead"], counters.dead)
        yield runs
        yield CounterMetricFamily(
            "tidings_jobs_published",
            "Jobs this process's relay published to the queue",
            value=counters.published,
        )
        stats = self.m._slow.jobs
        if stats is None:
            return
        jobs = GaugeMetricFamily(
            "tidings_jobs", "Jobs in the outbox, by queue and state", labels=["queue", "state"]
        )
        for queue, states in sorted(stats.by_state.items()):
            for state, count in sorted(states.items()):
                jobs.add_metric([queue, state], count)
        yield jobs
        yield _gauge(
            "tidings_jobs_oldest_waiting_seconds",
            "Age of the oldest job due and not started (0: none waits)",
            stats.oldest_waiting_seconds or 0.0,
        )
        yield _gauge("tidings_jobs_dead", "Dead letters: jobs that gave up", stats.dead)
        lag = GaugeMetricFamily(
            "tidings_job_consumer_lag_events",
            "Events an event consumer has not read yet",
            labels=["consumer"],
        )
        for name, behind in sorted(stats.consumer_lag.items()):
            lag.add_metric([name], behind)
        yield lag
        broker = GaugeMetricFamily(
            "tidings_jobs_broker_messages",
            "Messages waiting in the broker (RabbitMQ; none in-process), by queue",
            labels=["queue"],
        )
        for queue, count in sorted(stats.broker.items()):
            broker.add_metric([queue], count)
        yield broker

    def _backups(self) -> Iterator[Metric]:
        """Scheduled backups (the worker role runs them): the newest successful one is
        the database's (the same on every worker), the failures this process's. The
        last-success families have no sample until there is one (absent() says so)."""
        m = self.m
        yield _gauge(
            "tidings_backup_interval_seconds",
            "How often the worker role makes a backup (backup_interval_seconds; 0: never)",
            m.container.settings.backup_interval_seconds,
        )
        at = GaugeMetricFamily(
            "tidings_backup_last_success_timestamp_seconds",
            "When the newest successful scheduled backup finished (Unix time)",
        )
        size = GaugeMetricFamily(
            "tidings_backup_last_success_bytes", "Size of the newest successful scheduled backup"
        )
        took = GaugeMetricFamily(
            "tidings_backup_last_success_duration_seconds",
            "How long the newest successful scheduled backup took",
        )
        last = m._slow.backup
        if last is not None:
            at.add_metric([], last.at.timestamp())
            size.add_metric([], last.bytes)
            took.add_metric([], last.seconds)
        yield at
        yield size
        yield took
        yield CounterMetricFamily(
            "tidings_backup_failures",
            "Scheduled backup attempts that failed in this process (each retry counts)",
            value=m.container.deps.counts.backup_failures,
        )
