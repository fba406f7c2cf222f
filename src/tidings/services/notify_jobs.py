"""Notifications for people whose tab is closed: from committed messages to push and
digest jobs, and the user's own settings for them.

Off the send path, like webhooks (services/webhooks.py): the event consumer
"notifications" reads `message` events from the event log after its cursor
(services/jobs.py) and derives, per person notified (`notified_for`, the one seam):

- `push.notify` (id `push:<conversation>:<seq>:<user>`): services/push.py sends it to
  each of the user's devices (one `push.send` job per device);
- `digest.send` (id `digest:<user>:<bucket>`, due digest_delay_seconds later; one job
  per user and delay-long bucket of time): services/digests.py mails what is still
  unread then, everything missed since the last digest in one mail.

Whether a person is still to be told is asked again when each job runs (`still_due`):
not if they have read it, left the conversation, or it was recalled.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidOperation, InvalidRequest
from tidings.core.jobs import NewJob
from tidings.core.models import (
    ConversationId,
    ConversationKind,
    MemberNotify,
    Session,
    StoredEvent,
    User,
    UserId,
    UserOrigin,
)
from tidings.core.notifications import NotifySettings, check_email, notified_for
from tidings.core.notify import EveryoneMention
from tidings.core.rules import everyone_mention
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.jobs import JobService
from tidings.services.notifications import zone_of
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)

CONSUMER = "notifications"
PUSH_NOTIFY = "push.notify"
DIGEST_SEND = "digest.send"
KIND_CACHE = 10_000


@dataclass(frozen=True, slots=True)
class MySettings:
    """What GET/PUT /users/me/notifications/offline show: the settings, the email address the
    digests go to, and whether this server sends email and push at all."""

    settings: NotifySettings
    email: str | None
    email_available: bool
    push_available: bool


class NotifyJobService:
    def __init__(self, deps: Deps, jobs: JobService) -> None:
        self.d = deps
        self.jobs = jobs
        self.limits = deps.notify
        self.limiter = RateLimiter(deps)
        self._kinds: OrderedDict[str, ConversationKind] = OrderedDict()
        jobs.on_events(CONSUMER, self)

    # --- the seam: who is notified ---------------------------------------------------
    async def still_due(
        self, tx: Tx, user_id: str, conversation_id: str, seq: int, *, digest: bool = False
    ) -> bool:
        """Whether `user_id` is still to be told of message `seq` now: a member who may
        read it and has not, the message not recalled, and the policy says so with
        their settings as they are now (do not disturb, mute, level: core/notify.py)."""
        message = await tx.get_message(conversation_id, seq)
        if message is None or message.deleted:
            return False
        member = await tx.get_member(conversation_id, user_id)
        if member is None or not member.active or member.read_seq >= seq:
            return False
        if seq < member.first_seq:
            return False
        conv = await tx.get_conversation(conversation_id)
        user = await tx.get_user(user_id)
        if conv is None or user is None:
            return False
        dnd = {member.user_id: (await tx.get_dnd(user_id), zone_of(user))}
        found = notified_for(
            conv.kind,
            message.sender_id,
            {member.user_id: member.notify},
            message.mentions,
            everyone_mention(message.body),
            now=self.d.clock.now(),
            dnd=dnd,
            digest=digest,
        )
        return member.user_id in found

    # --- the event consumer ------------------------------------------------------------
    def active(self) -> bool:
        return self.limits.push_enabled or bool(self.limits.smtp_host)

    async def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        sent = [e for e in events if e.payload.get("kind") == "message"]
        if not sent:
            return []
        kinds = await self._conversation_kinds(
            {e.conversation_id for e in sent if e.conversation_id is not None}
        )
        push = self.limits.push_enabled
        email = bool(self.limits.smtp_host)
        delay = self.limits.digest_delay_seconds
        bucket_s = max(1.0, delay)
        # user, conversation, seq, the message's time, pushed, mailed
        targets: list[tuple[UserId, str, int, float, bool, bool]] = []
        # per conversation: the members a push or a mail can reach (most have neither),
        # with their settings there, and who of them has a push subscription, who digests
        members_of: dict[str, dict[UserId, MemberNotify]] = {}
        has_push: set[UserId] = set()
        has_mail: set[UserId] = set()
        now = self.d.clock.now()
        for event in sent:
            raw = event.payload.get("message")
            cid = event.conversation_id
            if not isinstance(raw, dict) or cid is None or cid not in kinds:
                continue
            kind = kinds[cid]
            if cid not in members_of:
                # the members' levels and mutes as they are now (do not disturb is
                # asked when each job runs: it may end before a digest is due)
                async with self.d.store.read() as tx:
                    reachable = await tx.reachable_members(cid, push=push, mail=email)
                members_of[cid] = {m.user_id: m.notify for m in reachable}
                has_push.update(m.user_id for m in reachable if m.push)
                has_mail.update(m.user_id for m in reachable if m.mail)
            sender = UserId(str(raw.get("sender_id", "")))
            seq = int(raw.get("seq", 0))
            mentions = [str(u) for u in raw.get("mentions") or []]
            everyone_raw = raw.get("mentions_everyone")
            everyone = (
                EveryoneMention(everyone_raw)
                if everyone_raw in {e.value for e in EveryoneMention}
                else None
            )
            members = members_of[cid]
            pushed = notified_for(kind, sender, members, mentions, everyone, now=now)
            mailed = notified_for(kind, sender, members, mentions, everyone, now=now, digest=True)
            at = event_time(raw)
            for uid in sorted(pushed | mailed):
                targets.append((uid, cid, seq, at, uid in pushed, uid in mailed))
        found: list[NewJob] = []
        stamp = now.timestamp()
        for uid, conv, seq, at, to_push, to_mail in targets:
            if push and to_push and uid in has_push:
                found.append(
                    NewJob(
                        PUSH_NOTIFY,
                        {"user_id": uid, "conversation_id": conv, "seq": seq},
                        job_id=f"push:{conv}:{seq}:{uid}",
                    )
                )
            if email and to_mail and uid in has_mail:
                found.append(
                    NewJob(
                        DIGEST_SEND,
                        {"user_id": uid},
                        job_id=f"digest:{uid}:{int(at // bucket_s)}",
                        # due `delay` after the message, however late this reads it
                        delay_seconds=max(0.0, at + delay - stamp),
                    )
                )
        return found

    async def _conversation_kinds(self, ids: set[ConversationId]) -> dict[str, ConversationKind]:
        missing = [i for i in ids if i not in self._kinds]
        if missing:
            async with self.d.store.read() as tx:
                got = await tx.conversation_kinds(missing)
            for cid, kind in got.items():
                self._kinds[cid] = kind
            while len(self._kinds) > KIND_CACHE:
                self._kinds.popitem(last=False)
        return {i: self._kinds[i] for i in ids if i in self._kinds}

    # --- the user's own settings ----------------------------------------------------------
    async def my_settings(self, actor: User) -> MySettings:
        async with self.d.store.read() as tx:
            settings = await tx.get_notify_settings(actor.id)
            user = await tx.get_user(actor.id)
        return self._mine(settings, None if user is None else user.email)

    def _mine(self, settings: NotifySettings, email: str | None) -> MySettings:
        return MySettings(
            settings=settings,
            email=email,
            email_available=bool(self.limits.smtp_host),
            push_available=self.limits.push_enabled,
        )

    async def update_settings(
        self,
        session: Session,
        *,
        email_digests: bool | None = None,
        previews: bool | None = None,
        email: str | None = None,
        clear_email: bool = False,
    ) -> MySettings:
        """Change the caller's settings; `email` (local accounts only: a directory's
        accounts get theirs from it) is where digests go."""
        actor = session.user
        await self.limiter.check(Action.NOTIFY, actor.id, None)
        new_email: str | None = None
        if email is not None:
            new_email = check_email(email)
        async with self.d.store.write() as tx:
            user = await tx.get_user(actor.id)
            if user is None:
                raise InvalidRequest("no such user")
            old = await tx.get_notify_settings(actor.id)
            settings = NotifySettings(
                email_digests=old.email_digests if email_digests is None else email_digests,
                previews=old.previews if previews is None else previews,
            )
            if settings != old:
                await tx.set_notify_settings(actor.id, settings)
            address = user.email
            if new_email is not None or clear_email:
                if user.origin is not UserOrigin.LOCAL:
                    raise InvalidOperation(
                        "this account's email address comes from the directory "
                        f"({user.origin.value})"
                    )
                address = new_email
                if address != user.email:
                    await tx.set_user_email(actor.id, address)
                    await record(
                        tx,
                        self.d.clock,
                        AuditAction.USER_EMAIL_CHANGED,
                        actor_id=actor.id,
                        target_id=actor.id,
                        details={"had": user.email is not None, "has": address is not None},
                    )
        return self._mine(settings, address)


def event_time(raw: dict[str, object]) -> float:
    """The message's time (seconds since the epoch) from its wire form."""
    value = raw.get("created_at")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return 0.0
