"""Run the server: migrate, bootstrap the owner, serve with uvicorn, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
from typing import Any, cast

import structlog
import uvicorn
from uvicorn._types import ASGI3Application, ASGIApplication
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware, _TrustedHosts

from tidings.api.app import create_app
from tidings.app.backup import ScheduledBackups
from tidings.app.connections import (
    ConnectionGuard,
    connection_cap,
    open_files_limit,
    raise_open_files_limit,
)
from tidings.app.container import Container
from tidings.app.fatal import report_fatal_signals
from tidings.app.first_start import announce_owner
from tidings.app.http_protocol import GuardedHttpProtocol, HeadLimits
from tidings.app.logging import configure_logging
from tidings.app.metrics import Metrics
from tidings.app.plugins import load_plugins
from tidings.app.security import TlsConfig, check_bind, tls_options
from tidings.app.settings import Settings
from tidings.app.ws_protocol import RawSocketProtocol
from tidings.bus.ports import Envelope
from tidings.core.errors import WeakPassword
from tidings.gateway.hub import Hub
from tidings.gateway.ws import WS_PATH, Gateway
from tidings.services.events import envelope_for
from tidings.store import migrations
from tidings.workers.backups import BackupClock
from tidings.workers.jobs import JobWorker
from tidings.workers.ldap_sync import LdapSyncScheduler
from tidings.workers.maintenance import Maintenance

log = structlog.get_logger(__name__)


class _DrainingServer(uvicorn.Server):
    """On SIGTERM: tell WebSocket clients to reconnect and flush them, then let uvicorn
    finish the requests in flight; the container closes last (accepted sends commit)."""

    def __init__(self, config: uvicorn.Config, hub: Hub | None, drain_seconds: float) -> None:
        super().__init__(config)
        self.hub = hub
        self.drain_seconds = drain_seconds

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        # What exists now (modules, the app, its routes) lives as long as the process:
        # keep it out of the collector's full passes, which would otherwise walk it
        # while messages wait.
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: Any = None) -> None:
        if self.hub is not None:
            log.info("draining", connections=sum(1 for _ in self.hub.connections))
            await self.hub.drain(self.drain_seconds)
        await super().shutdown(sockets)


def build(
    settings: Settings, container: Container | None = None
) -> tuple[Any, Container, Hub | None, Gateway | None]:
    """The application for the roles this process runs (on `container`, if given: the
    tests' in-process harness brings one with its own clock and ids)."""
    container = container or Container(settings)
    roles = set(settings.roles)
    hub = Hub(container.bus, container.deps.counts) if "gateway" in roles else None
    metrics = Metrics(container, hub)
    gateway = (
        Gateway(
            container.services,
            hub,
            max_frame_bytes=settings.max_frame_bytes,
            auth_timeout=settings.auth_timeout_seconds,
            queue_limit=settings.ws_send_queue,
            max_per_user=settings.max_connections_per_user,
            max_per_address=settings.max_connections_per_address,
            trusted_proxies=_TrustedHosts(settings.trusted_proxies),
        )
        if hub is not None
        else None
    )
    worker = Maintenance(container) if "worker" in roles else None
    job_worker = JobWorker(container.services.jobs) if "worker" in roles else None
    ldap_sync = (
        LdapSyncScheduler(container.services.ldap, settings.ldap_sync_interval_seconds)
        if "worker" in roles  # LDAP may be turned on later, from the web
        and settings.ldap_sync_interval_seconds > 0
        else None
    )
    backup_clock = None
    if "worker" in roles and settings.backup_interval_seconds:
        scheduled = ScheduledBackups(settings, container.services)
        scheduled.register()  # every worker can run the job, whichever enqueued it
        backup_clock = BackupClock(scheduled.tick, min(60.0, settings.backup_interval_seconds))

    async def fetch(after: int, until: int) -> list[Envelope]:
        events = await container.services.sync.committed_between(after, until)
        return [envelope_for(e) for e in events]

    async def on_startup() -> None:
        await container.start()
        if hub is not None:
            await hub.start(
                fetch,
                container.services.sync.head,
                poll_interval=1.0 if container.is_clustered else None,
            )
            hub.watch_sessions(container.services.auth.ended_tokens, settings.session_check_seconds)
        if worker is not None:
            worker.start()
        if job_worker is not None:
            job_worker.start()
        if ldap_sync is not None:
            ldap_sync.start()
        if backup_clock is not None:
            backup_clock.start()
        log.info("started", roles=sorted(roles))

    async def on_shutdown() -> None:
        if backup_clock is not None:
            await backup_clock.close()
        if ldap_sync is not None:
            await ldap_sync.close()
        if job_worker is not None:
            await job_worker.close()
        if worker is not None:
            await worker.close()
        if hub is not None:
            await hub.close()
        await container.close()

    app = create_app(
        container.services,
        gateway,
        api="api" in roles,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        body_timeout=settings.body_timeout_seconds,
        hsts_max_age=settings.hsts_max_age,
        readiness=container.readiness,
        status=lambda: {
            "node": settings.node_name or f"{socket.gethostname()}:{settings.port}",
            "roles": sorted(roles),
            "connections": 0 if hub is None else sum(1 for _ in hub.connections),
        },
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        metrics=metrics,
    )
    app.state.metrics = metrics
    return app, container, hub, gateway


async def bootstrap(container: Container) -> str | None:
    """Check the server keys against the database (services/secrets.py: KeyProblem when
    one is missing), then make the owner on first start."""
    await container.services.secrets.prepare()
    settings = container.settings
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    try:
        return await container.services.users.ensure_owner(settings.admin_username, password)
    except WeakPassword as exc:  # the policy is the same for the first owner
        raise WeakPassword(
            f"admin_password (TIDINGS_ADMIN_PASSWORD) is refused: {exc.message}"
        ) from None


# The event loop's thread holds the GIL almost all the time under load; a thread that
# wants it back (the one that waits for a commit's fsync) gets it only when the loop
# blocks or after this interval. Python's default of 5 ms is a send's whole budget: at
# 0.5 ms the commit starts and returns sooner (latency bench: p99 7.75 -> 7.0 ms, p50
# 4.4 -> 4.3 ms over four alternating runs each), and the loop gives up the GIL
# only when another thread asks.
GIL_SWITCH_INTERVAL_S = 0.0005


def serve(settings: Settings) -> None:
    check_bind(settings)  # before anything else: plain HTTP beyond loopback is refused
    report_fatal_signals(settings.data_dir)  # SIGBUS from a failing data file: one line
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    raise_open_files_limit()  # as far as the hard limit allows: more connections
    tls = tls_options(settings)
    configure_logging(settings.log_level, settings.log_format)
    plugins = load_plugins(settings)  # a wrong plugin stops the start before anything is written
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.db_url)
    app, _container, hub, gateway = build(settings, Container(settings, plugins=plugins))
    generated = asyncio.run(_bootstrap_once(settings))
    if generated is not None:
        # Printed once, to the operator's terminal, and in a 0600 file; never logged.
        announce_owner(settings.data_dir, settings.admin_username, generated, sys.stdout)
    config = uvicorn_config(app, settings, gateway, loop="uvloop", **tls)
    server = _DrainingServer(config, hub, settings.drain_seconds)
    log.info(
        "serving",
        host=settings.host,
        port=settings.port,
        data_dir=str(settings.data_dir),
        tls=bool(tls),
    )
    server.run()


def uvicorn_config(
    app: Any, settings: Settings, gateway: Gateway | None, **options: Any
) -> uvicorn.Config:
    """How uvicorn serves `app`: the same for `serve` and for the tests' in-process
    server (which runs it in its own event loop, on a socket it bound)."""
    guard = ConnectionGuard(
        max_connections=connection_cap(
            settings.max_connections, settings.fd_reserve, open_files_limit()
        ),
        per_address=settings.max_connections_per_address,
        header_timeout=settings.header_timeout_seconds,
        exempt=_TrustedHosts(settings.trusted_proxies),
    )
    http = GuardedHttpProtocol.configured(
        guard, HeadLimits(settings.max_header_bytes, settings.max_header_count)
    )
    direct: dict[str, ASGIApplication] = {}
    if gateway is not None:
        # Same trust in X-Forwarded-For as the HTTP routes (uvicorn wraps the app alike).
        direct[WS_PATH] = ProxyHeadersMiddleware(
            cast(ASGI3Application, gateway), trusted_hosts=settings.trusted_proxies
        )
    ws_protocol = RawSocketProtocol.routing(direct, guard)
    metrics = getattr(getattr(app, "state", None), "metrics", None)
    if isinstance(metrics, Metrics):
        metrics.guard = guard  # its open connections, in /metrics
    log.info("connection_limits", max_connections=guard.max_connections)
    return TlsConfig(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        http=http,
        ws=ws_protocol,
        ws_per_message_deflate=settings.ws_compression,
        ws_max_size=max(4 * settings.max_frame_bytes, 1024 * 1024),
        ws_ping_interval=20,
        ws_ping_timeout=20,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_seconds) + 5,
        lifespan="on",
        **options,
    )


async def _bootstrap_once(settings: Settings) -> str | None:
    container = Container(settings)
    try:
        return await bootstrap(container)
    finally:
        await container.close()
