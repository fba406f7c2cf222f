"""Outgoing webhooks: register, change, rotate, delete, ping; derive one delivery job
per (webhook, event) from the committed event stream; deliver, sign, log, retry, and
disable a webhook that keeps failing, telling its owner.

Who may do what:
- an admin registers org-wide webhooks and webhooks of any conversation, and manages
  every webhook;
- a conversation's owner registers webhooks of that conversation (a group or channel:
  direct conversations have no owner) and manages the ones they registered while they
  stay its owner. Anyone else gets `not_found` for a webhook, as for one that is not
  there.

What a webhook sees: the events of the kinds it asked for (core/webhooks.py:
WEBHOOK_KINDS, read positions never) committed after it was registered or last
enabled, of its conversation, or org-wide of every group and channel, private groups
included (an admin's compliance view). Direct conversations only when the setting
webhook_direct_conversations is on: a person's direct messages are not the company's
integrations' to read unless the organization decided so (docs/integrations.md).

Deliveries are jobs (services/jobs.py): the event consumer "webhooks" turns events into
`webhook.deliver` jobs with the id `webhook:<webhook id>:<position>`, off the send path;
the handler POSTs the event through the Outbound port (outbound/http.py: the SSRF
guard), signed with the webhook's secret (sealed at rest under the server key)."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import structlog

from tidings.core.audit import AuditAction
from tidings.core.errors import (
    CapReached,
    Conflict,
    Forbidden,
    InvalidOperation,
    InvalidRequest,
    NotFound,
)
from tidings.core.jobs import Job, JobPolicy, NewJob, Permanent
from tidings.core.models import (
    ConversationId,
    ConversationKind,
    MemberRole,
    OrgRole,
    StoredEvent,
    User,
    UserId,
)
from tidings.core.rules import check_admin, search_key
from tidings.core.webhooks import (
    PING,
    Delivery,
    DeliveryStatus,
    DisabledReason,
    Target,
    Webhook,
    WebhookId,
    check_events,
    check_url,
    delivery_id,
    event_body,
    parse_networks,
    signature,
)
from tidings.outbound.ports import Outbound, Refused, Unreachable
from tidings.services.audit import record
from tidings.services.bots import NO_PASSWORD
from tidings.services.context import Deps
from tidings.services.conversations import ConversationService
from tidings.services.jobs import JobService
from tidings.services.messages import MessageService
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx, WebhookSecret

log = structlog.get_logger(__name__)

DELIVER = "webhook.deliver"
NOTICE = "webhook.disabled_notice"
CONSUMER = "webhooks"
SECRET_PREFIX = "whsec_"
# The account that tells owners their webhook was disabled (a bot: no password, no token).
NOTICE_BOT = "tidings-webhooks"
NOTICE_BOT_NAME = "Tidings Webhooks"
DELIVERIES_PAGE_MAX = 200
KIND_CACHE = 10_000  # conversations whose kind the consumer remembers
USER_AGENT = "Tidings-Webhooks/1"


@dataclass(frozen=True, slots=True)
class Created:
    """A new webhook and its secret: shown once (and again only by rotating it)."""

    webhook: Webhook
    secret: str


def shown_url(url: str) -> str:
    """A URL for the audit log and notices: without its query (it may carry a token)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class WebhookService:
    def __init__(
        self,
        deps: Deps,
        jobs: JobService,
        outbound: Outbound,
        conversations: ConversationService,
        messages: MessageService,
    ) -> None:
        self.d = deps
        self.jobs = jobs
        self.outbound = outbound
        self.conversations = conversations
        self.messages = messages
        self.limits = deps.webhooks
        self.allowed = parse_networks(self.limits.webhook_allowed_networks)
        self.limiter = RateLimiter(deps)
        self._enabled: list[Webhook] | None = None  # cache of the consumer's
        self._loaded_at = float("-inf")
        self._generation = 0  # bumped by every change: a read begun before it is stale
        self._kinds: OrderedDict[str, ConversationKind] = OrderedDict()
        policy = JobPolicy(
            max_attempts=self.limits.webhook_max_attempts,
            timeout_seconds=self.limits.webhook_timeout_seconds + 30.0,  # and its writes
            queue="webhooks",
        )
        jobs.register(DELIVER, self._deliver, policy)
        jobs.register(NOTICE, self._notice, JobPolicy(max_attempts=8, queue="webhooks"))
        jobs.on_events(CONSUMER, self)

    # --- registering and managing -------------------------------------------------------
    async def create(
        self,
        actor: User,
        url: str,
        events: Sequence[str],
        conversation_id: str | None = None,
    ) -> Created:
        await self.limiter.check(Action.WEBHOOK, actor.id, None)
        target = check_url(url, self.limits.webhook_max_url_chars)
        kinds = check_events(events)
        async with self.d.store.read() as tx:
            await self._check_can_register(tx, actor, conversation_id)
            if await tx.count_webhooks(actor.id) >= self.limits.webhook_max_per_owner:
                raise CapReached(
                    f"you have the most webhooks allowed ({self.limits.webhook_max_per_owner})",
                    field="url",
                    limit=self.limits.webhook_max_per_owner,
                )
        await self._check_reachable(target)
        secret = new_secret()
        now = self.d.clock.now()
        webhook_id = WebhookId(self.d.ids.new_id())
        key_id, sealed = self.d.keyring.seal_webhook(webhook_id, secret)
        async with self.d.store.write() as tx:
            webhook = Webhook(
                id=webhook_id,
                url=url,
                events=kinds,
                conversation_id=None
                if conversation_id is None
                else ConversationId(conversation_id),
                owner_id=actor.id,
                enabled=True,
                disabled_reason=None,
                failures=0,
                since_position=await tx.head_position(),
                created_at=now,
                updated_at=now,
            )
            await tx.insert_webhook(webhook, WebhookSecret(sealed, key_id))
            await record(
                tx,
                self.d.clock,
                AuditAction.WEBHOOK_CREATED,
                actor_id=actor.id,
                target_id=webhook.id,
                details={
                    "url": shown_url(url),
                    "events": list(kinds),
                    "conversation_id": conversation_id,
                },
            )
            tx.after_commit(self._forget_on_commit)
        return Created(webhook, secret)

    async def list_for(self, actor: User) -> list[Webhook]:
        """Every webhook for an admin; the ones the caller registered for anyone else."""
        async with self.d.store.read() as tx:
            return await tx.list_webhooks(None if actor.role.is_admin else actor.id)

    async def get(self, actor: User, webhook_id: str) -> Webhook:
        async with self.d.store.read() as tx:
            return await self._manageable(tx, actor, webhook_id)

    async def update(
        self,
        actor: User | None,
        webhook_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> Webhook:
        """Change the URL, the event kinds, or turn it off or on. Turning it on again
        starts afresh: failures at 0, events from now on (none of the time it was off).
        `actor` None: the operator at the command line."""
        if actor is not None:
            await self.limiter.check(Action.WEBHOOK, actor.id, None)
        target = None if url is None else check_url(url, self.limits.webhook_max_url_chars)
        kinds = None if events is None else check_events(events)
        if target is not None:
            async with self.d.store.read() as tx:
                await self._manageable(tx, actor, webhook_id)
            await self._check_reachable(target)
        async with self.d.store.write() as tx:
            old = await self._manageable(tx, actor, webhook_id)
            new = old
            if url is not None and url != old.url:
                new = replace(new, url=url)
            if kinds is not None and kinds != old.events:
                new = replace(new, events=kinds)
            if enabled is True and not old.enabled:
                head = await tx.head_position()
                new = replace(
                    new, enabled=True, disabled_reason=None, failures=0, since_position=head
                )
            elif enabled is False and old.enabled:
                new = replace(new, enabled=False, disabled_reason=DisabledReason.MANUAL)
            if new == old:
                return old
            new = replace(new, updated_at=self.d.clock.now())
            await tx.update_webhook(new)
            details: dict[str, object] = {"changes": _changes(old, new)}
            if new.url != old.url:
                details["url"] = shown_url(new.url)
            if new.events != old.events:
                details["events"] = list(new.events)
            await record(
                tx,
                self.d.clock,
                AuditAction.WEBHOOK_UPDATED,
                actor_id=None if actor is None else actor.id,
                target_id=new.id,
                details=details,
            )
            tx.after_commit(self._forget_on_commit)
        return new

    async def rotate_secret(self, actor: User, webhook_id: str) -> Created:
        """A new signing secret, shown once; the old one stops at once (deliveries
        retried from now on are signed with the new one)."""
        await self.limiter.check(Action.WEBHOOK, actor.id, None)
        secret = new_secret()
        async with self.d.store.write() as tx:
            webhook = await self._manageable(tx, actor, webhook_id)
            key_id, sealed = self.d.keyring.seal_webhook(webhook.id, secret)
            await tx.set_webhook_secret(webhook.id, WebhookSecret(sealed, key_id))
            webhook = replace(webhook, updated_at=self.d.clock.now())
            await tx.update_webhook(webhook)
            await record(
                tx,
                self.d.clock,
                AuditAction.WEBHOOK_SECRET_ROTATED,
                actor_id=actor.id,
                target_id=webhook.id,
            )
        return Created(webhook, secret)

    async def delete(self, actor: User | None, webhook_id: str) -> None:
        if actor is not None:
            await self.limiter.check(Action.WEBHOOK, actor.id, None)
        async with self.d.store.write() as tx:
            webhook = await self._manageable(tx, actor, webhook_id)
            await tx.delete_webhook(webhook.id)
            await record(
                tx,
                self.d.clock,
                AuditAction.WEBHOOK_DELETED,
                actor_id=None if actor is None else actor.id,
                target_id=webhook.id,
                details={"url": shown_url(webhook.url)},
            )
            tx.after_commit(self._forget_on_commit)

    async def ping(self, actor: User, webhook_id: str) -> str:
        """Send a test delivery (X-Tidings-Event: ping), a job like every delivery, also
        to a webhook that is off (to check a receiver before turning it on again). A
        ping's failure is logged but never counts towards disabling. Returns its
        X-Tidings-Delivery id (to find it in the delivery log)."""
        await self.limiter.check(Action.WEBHOOK, actor.id, None)
        job_id = f"webhook-ping:{webhook_id}:{self.d.ids.new_id()}"
        async with self.d.store.write() as tx:
            webhook = await self._manageable(tx, actor, webhook_id)
            await self.jobs.enqueue(
                tx, DELIVER, {"webhook_id": webhook.id, "ping": True}, job_id=job_id
            )
        return delivery_id(job_id)

    async def deliveries(
        self, actor: User | None, webhook_id: str, before: str | None = None, limit: int = 50
    ) -> list[Delivery]:
        """The delivery log, newest first (one row per attempt); `actor` None: the
        operator."""
        async with self.d.store.read() as tx:
            webhook = await self._manageable(tx, actor, webhook_id)
            return await tx.list_deliveries(
                webhook.id, before, max(1, min(limit, DELIVERIES_PAGE_MAX))
            )

    async def all_for_operator(self) -> list[Webhook]:
        """Every webhook, for the command line (the operator sees every one)."""
        async with self.d.store.read() as tx:
            return await tx.list_webhooks(None)

    # --- permissions ----------------------------------------------------------------
    async def _check_can_register(self, tx: Tx, actor: User, conversation_id: str | None) -> None:
        if conversation_id is None:
            check_admin(actor, "register org-wide webhooks (give conversation_id for one of yours)")
            return
        conv = await tx.get_conversation(conversation_id)
        member = await tx.get_member(conversation_id, actor.id)
        active = member if member is not None and member.active else None
        visible = conv is not None and (
            actor.role.is_admin
            or active is not None
            or (conv.kind is ConversationKind.CHANNEL and actor.role is not OrgRole.GUEST)
        )
        if conv is None or not visible:
            raise NotFound("conversation not found", conversation_id=conversation_id)
        if conv.kind is ConversationKind.DIRECT:
            if not actor.role.is_admin:
                raise Forbidden("only an admin can register webhooks of a direct conversation")
            if not self.limits.webhook_direct_conversations:
                raise InvalidOperation(
                    "webhooks of direct conversations are off (webhook_direct_conversations)"
                )
            return
        if actor.role.is_admin:
            return
        if active is None or active.role is not MemberRole.OWNER:
            raise Forbidden("only the conversation's owner or an admin can register its webhooks")

    async def _may_manage(self, tx: Tx, actor: User, webhook: Webhook) -> bool:
        if actor.role.is_admin:
            return True
        if webhook.owner_id != actor.id or webhook.conversation_id is None:
            return False
        member = await tx.get_member(webhook.conversation_id, actor.id)
        return member is not None and member.active and member.role is MemberRole.OWNER

    async def _manageable(self, tx: Tx, actor: User | None, webhook_id: str) -> Webhook:
        """The webhook if `actor` may manage it (None: the operator); else not_found,
        the same as for one that is not there."""
        webhook = await tx.get_webhook(webhook_id)
        if webhook is not None and (actor is None or await self._may_manage(tx, actor, webhook)):
            return webhook
        raise NotFound("webhook not found", webhook_id=webhook_id)

    async def _check_reachable(self, target: Target) -> None:
        try:
            await self.outbound.resolve(target)
        except (Refused, Unreachable) as exc:
            raise InvalidRequest(f"url: {exc}", field="url") from None

    # --- from events to jobs (the consumer of services/jobs.py) ------------------------
    def _forget(self) -> None:
        self._generation += 1
        self._loaded_at = float("-inf")

    async def _forget_on_commit(self) -> None:
        self._forget()

    def active(self) -> bool:
        """Whether any webhook is on, as last read; True when that is older than
        webhook_cache_seconds (jobs_for then reads it again: one query per period while
        none is registered, nothing more)."""
        if self._enabled is None or time.monotonic() - self._loaded_at > self._ttl:
            return True
        return bool(self._enabled)

    @property
    def _ttl(self) -> float:
        return self.limits.webhook_cache_seconds

    async def _enabled_webhooks(self) -> list[Webhook]:
        if self._enabled is None or time.monotonic() - self._loaded_at > self._ttl:
            generation = self._generation
            async with self.d.store.read() as tx:
                found = await tx.enabled_webhooks()
            self._enabled = found
            # a change committed while this was read: the list may miss it, read again
            # next time (and until then, active() says yes)
            if generation == self._generation:
                self._loaded_at = time.monotonic()
            return found
        return self._enabled

    async def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        hooks = await self._enabled_webhooks()
        if not hooks:
            return []
        kinds = await self._conversation_kinds(
            {e.conversation_id for e in events if e.conversation_id is not None}
        )
        allow_direct = self.limits.webhook_direct_conversations
        found: list[NewJob] = []
        for event in events:
            cid = event.conversation_id
            kind = event.payload.get("kind")
            if cid is None or not isinstance(kind, str):
                continue
            if kinds.get(cid) is ConversationKind.DIRECT and not allow_direct:
                continue
            for hook in hooks:
                if event.position > hook.since_position and hook.wants(kind, cid):
                    found.append(
                        NewJob(
                            DELIVER,
                            # the event itself is read back at delivery: a job
                            # carries ids, never a message body (it may be large,
                            # and it would be copied once per webhook)
                            {"webhook_id": hook.id, "position": event.position, "kind": kind},
                            job_id=f"webhook:{hook.id}:{event.position}",
                        )
                    )
        return found

    async def _conversation_kinds(self, ids: set[ConversationId]) -> dict[str, ConversationKind]:
        """Kinds never change: remembered (the newest KIND_CACHE)."""
        missing = [i for i in ids if i not in self._kinds]
        if missing:
            async with self.d.store.read() as tx:
                found = await tx.conversation_kinds(missing)
            for cid, kind in found.items():
                self._kinds[cid] = kind
            while len(self._kinds) > KIND_CACHE:
                self._kinds.popitem(last=False)
        for cid in ids:
            if cid in self._kinds:
                self._kinds.move_to_end(cid)
        return {i: self._kinds[i] for i in ids if i in self._kinds}

    # --- delivering (the job handler) ---------------------------------------------------
    async def _deliver(self, job: Job) -> None:
        webhook_id = str(job.payload["webhook_id"])
        ping = bool(job.payload.get("ping", False))
        async with self.d.store.read() as tx:
            webhook = await tx.get_webhook(webhook_id)
            stored = await tx.get_webhook_secret(webhook_id)
            if webhook is None or stored is None:
                return  # deleted since
            if not ping and not webhook.enabled:
                return  # turned off since: what it missed is not sent later
            owner_ok = await self._owner_may_receive(tx, webhook)
            event: dict[str, object] = {}
            if not ping:
                at = int(job.payload["position"])
                found = await tx.events_between(at - 1, at)
                if not found:
                    return  # no longer in the event log: nothing to send
                event = found[0].payload
        kind = PING if ping else str(job.payload["kind"])
        position = None if ping else int(job.payload["position"])
        delivery = delivery_id(job.id)
        log_attempt = functools.partial(self._log, job, webhook, delivery, kind, position)
        if not owner_ok:
            await log_attempt(
                DeliveryStatus.REFUSED,
                None,
                None,
                "its owner may no longer see this conversation: nothing was sent",
                count=False,
            )
            return
        if ping:
            body_json: dict[str, Any] = {
                "kind": PING,
                "webhook_id": webhook.id,
                "at": self.d.clock.now().isoformat().replace("+00:00", "Z"),
            }
        else:
            body_json = event_body(position or 0, event, webhook.id)
        body = orjson.dumps(body_json)
        secret = self.d.keyring.open_webhook(webhook.id, stored.key_id, stored.sealed)
        timestamp = str(int(self.d.clock.now().timestamp()))
        headers = {
            "X-Tidings-Event": kind,
            "X-Tidings-Delivery": delivery,
            "X-Tidings-Timestamp": timestamp,
            "X-Tidings-Signature": signature(secret, timestamp, body),
            "X-Tidings-Attempt": str(job.attempt),
            "User-Agent": USER_AGENT,
        }
        target = check_url(webhook.url, max(len(webhook.url), self.limits.webhook_max_url_chars))
        started = time.monotonic()
        try:
            answer = await self.outbound.post(target, headers, body)
        except Refused as exc:
            await log_attempt(
                DeliveryStatus.REFUSED,
                None,
                None,
                str(exc),
                count=not ping,
            )
            if ping:
                return
            raise Permanent(f"the address is refused: {exc}") from None
        except Unreachable as exc:
            latency = round((time.monotonic() - started) * 1000)
            disabled = await log_attempt(
                DeliveryStatus.FAILED,
                None,
                latency,
                str(exc),
                count=not ping,
            )
            if disabled or ping:
                return
            raise
        status = answer.status
        if 200 <= status < 300:
            await log_attempt(
                DeliveryStatus.OK,
                status,
                answer.latency_ms,
                "",
                count=not ping,
            )
            return
        if status == 410 and not ping:  # the receiver is gone for good: off at once
            await log_attempt(
                DeliveryStatus.REJECTED,
                status,
                answer.latency_ms,
                "410 Gone: the webhook is disabled",
                count=False,
                gone=True,
            )
            return
        if status in (408, 429) or status >= 500:
            disabled = await log_attempt(
                DeliveryStatus.FAILED,
                status,
                answer.latency_ms,
                f"the receiver answered {status}",
                count=not ping,
            )
            if disabled or ping:
                return
            raise Unreachable(f"the receiver answered {status}")
        why = (
            f"the receiver answered {status} (redirects are not followed)"
            if 300 <= status < 400
            else f"the receiver answered {status}: not retried"
        )
        await log_attempt(
            DeliveryStatus.REJECTED,
            status,
            answer.latency_ms,
            why,
            count=not ping,
        )
        if not ping:
            raise Permanent(why)

    async def _owner_may_receive(self, tx: Tx, webhook: Webhook) -> bool:
        """A webhook delivers only while its owner may still register it: an admin, or
        for a conversation's webhook its owner (a removed owner's webhook stops)."""
        owner = await tx.get_user(webhook.owner_id)
        if owner is None or owner.disabled:
            return False
        if owner.role.is_admin:
            return True
        if webhook.conversation_id is None:
            return False
        member = await tx.get_member(webhook.conversation_id, owner.id)
        return member is not None and member.active and member.role is MemberRole.OWNER

    async def _log(
        self,
        job: Job,
        webhook: Webhook,
        delivery: str,
        kind: str,
        position: int | None,
        status: DeliveryStatus,
        code: int | None,
        latency_ms: int | None,
        error: str,
        *,
        count: bool,
        gone: bool = False,
    ) -> bool:
        """Log one attempt; count it towards the webhook's consecutive failures (`count`);
        disable the webhook when they reach webhook_max_failures (or `gone`), audited,
        and tell its owner (a job). Returns whether this disabled it."""
        now = self.d.clock.now()
        row = Delivery(
            id=self.d.ids.new_id(),
            webhook_id=webhook.id,
            delivery_id=delivery,
            kind=kind,
            position=position,
            attempt=job.attempt,
            at=now,
            status=status,
            response_code=code,
            latency_ms=latency_ms,
            error=error[:300],
        )
        async with self.d.store.write() as tx:
            if await tx.get_webhook(webhook.id) is None:
                return False  # deleted meanwhile: its log went with it
            await tx.insert_delivery(row, self.limits.webhook_log_keep)
            failures = 0
            if count:
                failures = await tx.count_webhook_attempt(webhook.id, status is DeliveryStatus.OK)
            reason = None
            if gone:
                reason = DisabledReason.GONE
            elif count and failures >= self.limits.webhook_max_failures:
                reason = DisabledReason.FAILURES
            current = await tx.get_webhook(webhook.id)
            if reason is None or current is None or not current.enabled:
                return False
            off = replace(current, enabled=False, disabled_reason=reason, updated_at=now)
            await tx.update_webhook(off)
            await record(
                tx,
                self.d.clock,
                AuditAction.WEBHOOK_DISABLED,
                actor_id=None,
                target_id=webhook.id,
                details={"reason": reason.value, "failures": off.failures, "last_error": error},
            )
            notice = {
                "webhook_id": webhook.id,
                "owner_id": webhook.owner_id,
                "reason": reason.value,
                "failures": off.failures,
                "url": shown_url(webhook.url),
                "error": error[:200],
            }
            await self.jobs.enqueue(
                tx, NOTICE, notice, job_id=f"webhook-notice:{webhook.id}:{row.id}"
            )
            tx.after_commit(self._forget_on_commit)
        log.warning("webhook_disabled", webhook_id=webhook.id, reason=reason.value)
        return True

    # --- telling the owner ---------------------------------------------------------------
    async def _notice(self, job: Job) -> None:
        """A direct message to the owner from the webhooks' bot account; idempotent
        (its client_msg_id comes from the job id)."""
        p = job.payload
        async with self.d.store.read() as tx:
            owner = await tx.get_user(str(p["owner_id"]))
        if owner is None or owner.disabled or owner.bot:
            return
        bot = await self._notice_bot()
        conversation, _ = await self.conversations.create(bot, ConversationKind.DIRECT, [owner.id])
        if p["reason"] == DisabledReason.GONE.value:
            why_en = "its receiver answered 410 Gone"
            why_zh = "接收端返回了 410 Gone"
        else:
            why_en = f"{p['failures']} deliveries in a row failed (last: {p['error']})"
            why_zh = f"连续 {p['failures']} 次投递失败（最后一次：{p['error']}）"
        body = (
            f"Your webhook {p['webhook_id']} to {p['url']} was disabled: {why_en}. "
            "Fix the receiver, send a test ping, then enable it again (Admin → Webhooks).\n\n"
            f"你的网络钩子 {p['webhook_id']}（{p['url']}）已停用：{why_zh}。"
            "请修复接收端，发送测试请求后再重新启用（管理 → 网络钩子）。"
        )
        client_msg_id = "webhook-notice-" + hashlib.sha256(job.id.encode()).hexdigest()[:40]
        await self.messages.send(bot, conversation.id, client_msg_id, body)

    async def _notice_bot(self) -> User:
        async with self.d.store.read() as tx:
            found = await tx.users_by_usernames([NOTICE_BOT])
        if found:
            return found[0]
        bot = User(
            id=UserId(self.d.ids.new_id()),
            username=NOTICE_BOT,
            display_name=NOTICE_BOT_NAME,
            role=OrgRole.MEMBER,
            disabled=False,
            created_at=self.d.clock.now(),
            bot=True,
        )
        try:
            async with self.d.store.write() as tx:
                await tx.insert_user(bot, NO_PASSWORD, search_key(NOTICE_BOT, NOTICE_BOT_NAME))
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.BOT_CREATED,
                    actor_id=None,
                    target_id=bot.id,
                    details={"username": NOTICE_BOT, "for": "webhook notices"},
                )
        except Conflict:  # made meanwhile by another delivery
            async with self.d.store.read() as tx:
                return (await tx.users_by_usernames([NOTICE_BOT]))[0]
        return bot


def _changes(old: Webhook, new: Webhook) -> list[str]:
    return [
        name for name in ("url", "events", "enabled") if getattr(old, name) != getattr(new, name)
    ]
