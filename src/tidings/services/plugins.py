"""Server plugins at run time: the `before_message` screen with its time limit, the
`after_event` hooks as jobs, and what admins see of the plugins (docs/integrations.md,
"Plugins"). The plugins themselves are loaded by app/plugins.py from their entry points;
their API is tidings/plugins/api.py.

A hook that raises, overruns `plugin_timeout_seconds` or returns something else than the
API allows never breaks a send: the message goes through (fail-open) unless the plugin
is fail-closed, then the send is refused as `unavailable`. Either way it is logged with
the plugin's name and counted (`GET /api/v1/admin/plugins`).

`after_event` runs off the send path: an event consumer `plugin:NAME` (registered only
for a plugin that has the hook) derives one job `plugin:NAME:POSITION` per committed
event of the kinds it asks for; the job carries the position, not the event (no message
body in the outbox or the broker), and its handler reads the event back and calls the
hook under the job's timeout. A failure is retried with backoff, then dead-lettered."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import structlog

from tidings.core.errors import RefusedByPolicy, Unavailable
from tidings.core.jobs import Job, JobPolicy, NewJob
from tidings.core.models import StoredEvent, User
from tidings.core.rules import check_admin, check_body
from tidings.plugins.api import Draft, PluginContext, PluginEvent, Refuse, Replace, Sender
from tidings.services.context import Deps
from tidings.services.jobs import JobService

log = structlog.get_logger(__name__)
MAX_REASON_CHARS = 500  # of a refusal's reason, as the sender gets it
MAX_RULE_CHARS = 100


@dataclass(slots=True)
class HookCounts:
    """Since this process started."""

    calls: int = 0
    refused: int = 0
    replaced: int = 0
    errors: int = 0
    timeouts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "refused": self.refused,
            "replaced": self.replaced,
            "errors": self.errors,
            "timeouts": self.timeouts,
        }


@dataclass(slots=True)
class LoadedPlugin:
    """A plugin made from its entry point (app/plugins.py)."""

    name: str
    plugin: object
    ctx: PluginContext
    fail_closed: bool = False
    source: str = ""  # "distribution version", or "shipped with tidings"
    before: HookCounts = field(default_factory=HookCounts)
    after_runs: int = 0  # after_event calls that returned
    after_failures: int = 0  # that raised or overran (each retried, then dead-lettered)

    def hook(self, name: str) -> Callable[..., Any] | None:
        found = getattr(self.plugin, name, None)
        return found if callable(found) else None

    @property
    def hooks(self) -> list[str]:
        return [h for h in ("before_message", "after_event") if self.hook(h) is not None]


@dataclass(frozen=True, slots=True)
class PluginSetup:
    """What the container gives the plugin service: the loaded plugins and the limits
    (settings plugin_timeout_seconds, plugin_threads, plugin_job_*)."""

    plugins: Sequence[LoadedPlugin] = ()
    timeout_seconds: float = 0.05
    threads: int = 4
    job_timeout_seconds: float = 30.0
    job_max_attempts: int = 5


def job_kind(plugin: str) -> str:
    return f"plugin:{plugin}"


@dataclass(frozen=True, slots=True)
class _Screen:
    plugin: LoadedPlugin
    hook: Callable[..., Any]
    is_async: bool


class PluginService:
    """The plugins of this process. `screening` is False when no plugin has a
    `before_message` hook: then MessageService never calls `screen` (no cost at all)."""

    def __init__(self, deps: Deps, jobs: JobService, setup: PluginSetup) -> None:
        self.d = deps
        self.jobs = jobs
        self.plugins = list(setup.plugins)
        self.timeout = setup.timeout_seconds
        self._screens = [
            _Screen(p, hook, inspect.iscoroutinefunction(hook))
            for p in self.plugins
            if (hook := p.hook("before_message")) is not None
        ]
        self.screening = bool(self._screens)
        self._threads = setup.threads
        self._pool: ThreadPoolExecutor | None = None  # made when a sync hook first runs
        policy = JobPolicy(
            max_attempts=setup.job_max_attempts, timeout_seconds=setup.job_timeout_seconds
        )
        for plugin in self.plugins:
            hook = plugin.hook("after_event")
            if hook is not None:
                kinds = getattr(plugin.plugin, "after_event_kinds", None)
                if isinstance(kinds, str):  # one kind, not its letters
                    kinds = {kinds}
                after = _AfterEvents(self, plugin, hook, None if kinds is None else set(kinds))
                jobs.register(job_kind(plugin.name), after.run, policy)
                jobs.on_events(job_kind(plugin.name), after)

    # --- before_message -----------------------------------------------------------
    async def screen(
        self,
        sender: User,
        conversation_id: str,
        body: str,
        *,
        client_msg_id: str | None = None,
        edit_seq: int | None = None,
    ) -> str:
        """The body to store, after every `before_message` hook in the order of the
        `plugins` setting (each sees the body the one before let through). Raises
        RefusedByPolicy (a hook refused) or Unavailable (a fail-closed hook failed)."""
        who = Sender(sender.id, sender.username, sender.role.value, sender.bot)
        for screen in self._screens:
            draft = Draft(who, conversation_id, body, client_msg_id, edit_seq)
            verdict = await self._run(screen, draft)
            if isinstance(verdict, Refuse):
                screen.plugin.before.refused += 1
                reason = verdict.reason[:MAX_REASON_CHARS]
                rule = None if verdict.rule is None else str(verdict.rule)[:MAX_RULE_CHARS]
                raise RefusedByPolicy(
                    f"refused by policy: {reason}",
                    plugin=screen.plugin.name,
                    reason=reason,
                    **({} if rule is None else {"rule": rule}),
                )
            if isinstance(verdict, Replace):
                screen.plugin.before.replaced += 1
                body = verdict.body
                check_body(body, self.d.limits.max_message_bytes)
        return body

    async def _run(self, screen: _Screen, draft: Draft) -> Refuse | Replace | None:
        plugin = screen.plugin
        plugin.before.calls += 1
        try:
            async with asyncio.timeout(self.timeout):
                if screen.is_async:
                    verdict = await screen.hook(plugin.ctx, draft)
                else:
                    verdict = await self.run_sync(screen.hook, plugin.ctx, draft)
        except TimeoutError:
            plugin.before.timeouts += 1
            self._failed(plugin, "timeout", None)
            return None
        except Exception as exc:  # noqa: BLE001 - one plugin's boundary: logged, counted
            plugin.before.errors += 1
            self._failed(plugin, "error", exc)
            return None
        if verdict is None or isinstance(verdict, Refuse | Replace):
            wrong = (isinstance(verdict, Refuse) and not isinstance(verdict.reason, str)) or (
                isinstance(verdict, Replace) and not isinstance(verdict.body, str)
            )
            if not wrong:
                return verdict
        plugin.before.errors += 1
        self._failed(plugin, "error", TypeError(f"returned an unusable {verdict!r:.100}"))
        return None

    def _failed(self, plugin: LoadedPlugin, outcome: str, exc: BaseException | None) -> None:
        """Fail-open (returns: the message goes on) or fail-closed (Unavailable)."""
        log.warning(
            "plugin_hook_failed",
            plugin=plugin.name,
            hook="before_message",
            outcome=outcome,  # error | timeout
            timeout_seconds=self.timeout,
            fail="closed" if plugin.fail_closed else "open",
            error=None if exc is None else f"{type(exc).__name__}: {exc}"[:300],
        )
        if plugin.fail_closed:
            raise Unavailable(
                f"the message policy check ({plugin.name}) failed: retry later"
            ) from exc

    def _thread_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="plugin")
        return self._pool

    def run_sync(self, hook: Callable[..., Any], *args: object) -> asyncio.Future[Any]:
        """A plain-def hook, in the plugin threads (the loop goes on meanwhile)."""
        return asyncio.get_running_loop().run_in_executor(self._thread_pool(), hook, *args)

    # --- admin --------------------------------------------------------------------
    def enabled(self, actor: User) -> list[dict[str, Any]]:
        """The loaded plugins, their hooks and counts: admins only."""
        check_admin(actor, "see the server's plugins")
        return [
            {
                "name": p.name,
                "source": p.source,
                "hooks": p.hooks,
                "fail_closed": p.fail_closed,
                "before_message": p.before.as_dict(),
                "after_event": {"runs": p.after_runs, "failures": p.after_failures},
            }
            for p in self.plugins
        ]

    async def close(self) -> None:
        if self._pool is not None:
            # a hook still running past its limit is not waited for
            self._pool.shutdown(wait=False, cancel_futures=True)


class _AfterEvents:
    """One plugin's `after_event`: the event consumer that derives its jobs, and the
    jobs' handler."""

    def __init__(
        self,
        service: PluginService,
        plugin: LoadedPlugin,
        hook: Callable[..., Any],
        kinds: set[str] | None,
    ) -> None:
        self.service = service
        self.plugin = plugin
        self.hook = hook
        self.is_async = inspect.iscoroutinefunction(hook)
        self.kinds = kinds
        self.kind = job_kind(plugin.name)

    def active(self) -> bool:
        return True  # registered only for a plugin with the hook

    async def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        return [
            NewJob(
                self.kind,
                {"position": e.position, "kind": str(e.payload.get("kind"))},
                job_id=f"{self.kind}:{e.position}",
            )
            for e in events
            if self.kinds is None or e.payload.get("kind") in self.kinds
        ]

    async def run(self, job: Job) -> None:
        position = int(job.payload["position"])
        async with self.service.d.store.read() as tx:
            found = await tx.events_between(position - 1, position)
        if not found:
            return  # no longer kept: nothing to tell the plugin
        stored = found[0]
        event = PluginEvent(
            position=str(stored.position),
            kind=str(stored.payload.get("kind")),
            conversation_id=stored.conversation_id,
            data=MappingProxyType(stored.payload),
        )
        try:
            if self.is_async:
                await self.hook(self.plugin.ctx, event)
            else:
                await self.service.run_sync(self.hook, self.plugin.ctx, event)
        except BaseException as exc:
            self.plugin.after_failures += 1
            log.warning(
                "plugin_hook_failed",
                plugin=self.plugin.name,
                hook="after_event",
                job_id=job.id,
                attempt=job.attempt,
                max_attempts=job.max_attempts,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            raise
        self.plugin.after_runs += 1
