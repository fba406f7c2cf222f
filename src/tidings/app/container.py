"""The container: chooses adapters once, at start-up, and builds the services
(cf. Synapse's HomeServer getters)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from tidings.app.keys import keyring_for
from tidings.app.plugins import load_plugins
from tidings.app.settings import Settings, limits_from
from tidings.blobs.factory import blob_store_ping, open_blob_store, start_blob_store
from tidings.blobs.ports import BlobStore
from tidings.bus.local import LocalBus
from tidings.bus.ports import Bus
from tidings.core.clock import Clock, IdGenerator, SystemClock, TimeOrderedIds
from tidings.core.webhooks import parse_networks
from tidings.identity.oidc import OidcClient, OidcOptions
from tidings.outbound.http import HttpOutbound
from tidings.queue.local import LocalQueue
from tidings.queue.ports import Queue
from tidings.search import text as search_text
from tidings.search.ports import SearchIndex
from tidings.services.config import ConfigSchema, ConfigService
from tidings.services.context import (
    Deps,
    FileLimits,
    IdentityLimits,
    ImageLimits,
    IntegrationLimits,
    JobLimits,
    Limits,
    NotifyLimits,
    ScimLimits,
    SearchLimits,
    SecurityLimits,
    WebhookLimits,
)
from tidings.services.hub import Services
from tidings.services.oidc import OidcLimits, OidcService
from tidings.services.passwords import Passwords
from tidings.services.plugins import LoadedPlugin, PluginSetup
from tidings.store.ports import Store
from tidings.store.sql.store import SqlStore
from tidings.workers.files import MediaProcessor

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from tidings.identity.ldap import LdapDirectory


def oidc_client_for(settings: Settings) -> OidcClient | None:
    """The OpenID provider's client, when `oidc_issuer` is set."""
    if settings.oidc_issuer is None:
        return None
    secret = settings.oidc_client_secret
    return OidcClient(
        OidcOptions(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=None if secret is None else secret.get_secret_value(),
            token_auth=settings.oidc_token_auth_method,
            scopes=tuple(settings.oidc_scopes.split()),
            allowed_hosts=frozenset(
                h.strip().lower() for h in settings.oidc_allowed_hosts.split(",") if h.strip()
            ),
            clock_skew_seconds=settings.oidc_clock_skew_seconds,
            http_timeout_seconds=settings.oidc_http_timeout_seconds,
            cache_seconds=settings.oidc_cache_seconds,
            max_response_bytes=settings.oidc_max_response_bytes,
        )
    )


# fixed at start-up (the worker's schedule, a file on the server): configuration file only
NOT_EDITABLE = frozenset(
    {"ldap_ca_file", "ldap_sync_interval_seconds", "ldap_sync_timeout_seconds"}
)
# limits every check reads from `deps.limits` / `deps.security` / `deps.files`
# (Deps.put_limits), so a change is in force at the next request; config_max_value_chars
# bounds this very form
LIVE_LIMITS = tuple(
    name
    for name in (
        *Limits.__dataclass_fields__,
        *SecurityLimits.__dataclass_fields__,
        *FileLimits.__dataclass_fields__,
    )
    if name != "config_max_value_chars" and name != "totp_issuer"
)


def config_schema(settings: Settings) -> ConfigSchema:
    """The settings admins may edit at run time (services/config.py): every ldap_* and
    oidc_* one but NOT_EDITABLE, and the LIVE_LIMITS; the ones `settings` were given
    explicitly (file, environment, arguments) are locked."""
    fields = Settings.model_fields
    editable = (
        *(
            name
            for name in fields
            if name.startswith(("ldap_", "oidc_")) and name not in NOT_EDITABLE
        ),
        *LIVE_LIMITS,
    )
    return ConfigSchema(
        explicit={k: getattr(settings, k) for k in settings.model_fields_set},
        editable=editable,
        defaults={k: fields[k].get_default(call_default_factory=True) for k in editable},
        descriptions={k: fields[k].description or "" for k in editable},
        validate=Settings.model_validate,
    )


_configured_words: set[str] = set()


def configure_search_words(setting: str) -> None:
    """The organization's words (search_user_words) into the segmenter, once each per
    process (it is process-wide), before anything is indexed or searched."""
    words = [w.strip() for w in setting.split(",") if w.strip()]
    new = [w for w in words if w not in _configured_words]
    if new:
        search_text.configure(new)
        _configured_words.update(new)


def search_index_for(store: Store) -> SearchIndex:
    """The search index adapter of the store's SQL engine (its `search_index`)."""
    kind = getattr(getattr(store, "engine", None), "search_index", "fts5")
    if kind == "postgres":
        from tidings.search.postgres import PostgresIndex

        return PostgresIndex()
    from tidings.search.fts5 import Fts5Index

    return Fts5Index()


class Container:
    """`clock` and `ids` are the time and the id source of every service (tests give a
    clock they move and ids they can predict; the defaults are the real ones);
    `passwords` a cheaper password hasher than the settings allow. Everything else
    comes from `settings` (`plugins`: the server plugins, loaded already by
    `tidings serve` before it migrates; default: loaded here); `blobs` the store of
    uploaded files' bytes (default: the one `blob_url` names, blobs/factory.py)."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        bus: Bus | None = None,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        passwords: Passwords | None = None,
        plugins: list[LoadedPlugin] | None = None,
        queue: Queue | None = None,
        blobs: BlobStore | None = None,
    ):
        self.settings = settings
        configure_search_words(settings.search_user_words)
        self.keyring = keyring_for(settings)
        self.store: Store = store or SqlStore.from_url(
            settings.db_url,
            pool_size=settings.db_pool_size,
            synchronous=settings.sqlite_synchronous,
            replica_urls=settings.replica_urls,
            write_lock_timeout=settings.write_lock_timeout_seconds,
            audit_signer=self.keyring.sign_head,
        )
        self.bus: Bus = bus or self._make_bus(settings)
        self.deps = Deps(
            store=self.store,
            bus=self.bus,
            clock=clock or SystemClock(),
            ids=ids or TimeOrderedIds(),
            limits=limits_from(settings, Limits),
            security=limits_from(settings, SecurityLimits),
            keyring=self.keyring,
            jobs=limits_from(settings, JobLimits),
            identity=limits_from(settings, IdentityLimits),
            integrations=limits_from(settings, IntegrationLimits),
            scim=limits_from(settings, ScimLimits),
            webhooks=limits_from(settings, WebhookLimits),
            files=limits_from(settings, FileLimits),
            search=limits_from(settings, SearchLimits),
            notify=limits_from(settings, NotifyLimits),
        )
        self.blobs: BlobStore = blobs or open_blob_store(settings)
        self.passwords = passwords or Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib
        )
        self.queue: Queue = queue or self._make_queue(settings)
        self.oidc_client = oidc_client_for(settings)
        oidc_limits = limits_from(settings, OidcLimits)
        self.directory = self._make_directory(settings)
        setup = PluginSetup(
            load_plugins(settings) if plugins is None else plugins,
            timeout_seconds=settings.plugin_timeout_seconds,
            threads=settings.plugin_threads,
            job_timeout_seconds=settings.plugin_job_timeout_seconds,
            job_max_attempts=settings.plugin_job_max_attempts,
        )
        self.outbound = HttpOutbound(
            parse_networks(settings.webhook_allowed_networks),
            timeout=settings.webhook_timeout_seconds,
            connect_timeout=settings.webhook_connect_timeout_seconds,
        )
        self.services = Services.build(
            self.deps,
            self.passwords,
            self.queue,
            self.directory,
            oidc=lambda auth, identity: OidcService(
                self.deps, auth, identity, self.oidc_client, oidc_limits
            ),
            plugins=setup,
            outbound=self.outbound,
            config=lambda _ldap, _oidc: ConfigService(
                self.deps, config_schema(settings), self._apply
            ),
            blobs=self.blobs,
            search_index=search_index_for(self.store),
        )
        # The job after an upload: image sizes, thumbnails and previews (workers/files.py).
        media = MediaProcessor(self.services.files, self.blobs, limits_from(settings, ImageLimits))
        self.services.files.set_processor(media)
        # avatars are cut from an upload's preview in the same image threads
        self.services.avatars.set_renderer(media.avatar)
        self._config_task: asyncio.Task[None] | None = None

    async def _apply(self, effective: Settings) -> None:
        """Put the limits, the LDAP directory and the OpenID provider client of
        `effective` (the settings with the admins' changes) in force on this node."""
        self.deps.put_limits(
            limits_from(effective, Limits),
            limits_from(effective, SecurityLimits),
            limits_from(effective, FileLimits),
        )
        directory = self._make_directory(effective)
        self.directory = directory
        self.services.ldap.set_directory(directory)
        client = oidc_client_for(effective)
        self.oidc_client = client
        await self.services.oidc.set_client(
            client, None if client is None else limits_from(effective, OidcLimits)
        )

    async def _watch_config(self) -> None:
        """Pick up the configuration another node changed (every config_poll_seconds)."""
        while True:
            await asyncio.sleep(self.settings.config_poll_seconds)
            try:
                await self.services.config.refresh()
            except Exception as exc:  # noqa: BLE001 - a database hiccup: next round
                log.warning("config_refresh_failed", error=f"{type(exc).__name__}: {exc}"[:200])

    @staticmethod
    def _make_bus(settings: Settings) -> Bus:
        if settings.redis_url:
            from tidings.bus.redis import RedisBus

            return RedisBus(
                settings.redis_url, settings.redis_prefix, settings.presence_ttl_seconds
            )
        return LocalBus()

    @staticmethod
    def _make_queue(settings: Settings) -> Queue:
        if settings.amqp_url:
            from tidings.queue.rabbitmq import RabbitQueue

            return RabbitQueue(settings.amqp_url, settings.amqp_prefix)
        return LocalQueue()

    @staticmethod
    def _make_directory(settings: Settings) -> LdapDirectory | None:
        if not settings.ldap_url:
            return None
        from tidings.identity.ldap import LdapConfig, LdapDirectory

        return LdapDirectory(limits_from(settings, LdapConfig))

    @property
    def is_clustered(self) -> bool:
        """Other nodes may publish: gateways must watch for missed bus traffic."""
        return self.settings.redis_url is not None

    async def start(self) -> None:
        """Before serving: the blob store (S3: keys and bucket checked), the search
        segmenter's dictionary (loaded in a thread, not on the first message), the bus, the
        configuration admins stored (put in force), and the watch for their changes on
        other nodes."""
        await start_blob_store(self.blobs)
        await asyncio.to_thread(search_text.warm_up)  # the segmenter's dictionary
        await self.bus.start()
        await self.services.config.refresh()
        if self._config_task is None:
            self._config_task = asyncio.create_task(self._watch_config())

    async def readiness(self) -> dict[str, str]:
        """What this node cannot reach right now (empty when ready)."""
        problems: dict[str, str] = {}
        checks: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("database", self.store.ping),
            ("bus", self.bus.ping),
        ]
        if not self.queue.in_process and "worker" in self.settings.roles:
            checks.append(("queue", self.queue.ping))
        blobs_ping = blob_store_ping(self.blobs)
        if blobs_ping is not None:  # an S3 store: every node needs it
            checks.append(("blobs", blobs_ping))
        for name, check in checks:
            try:
                async with asyncio.timeout(2):
                    await check()
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                problems[name] = f"{type(exc).__name__}: {exc}"[:200]
        return problems

    async def close(self) -> None:
        if self._config_task is not None:
            self._config_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._config_task
            self._config_task = None
        await self.services.messages.close()
        await self.services.plugins.close()
        await self.services.auth.last_seen.close()
        await self.queue.close()
        await self.services.oidc.set_client(None, None)  # closes the one in force
        await self.outbound.close()
        await self.bus.close()
        await self.blobs.close()
        await self.store.close()
        self.services.ldap.set_directory(None)
