"""Scheduled messages: send later, editable and cancellable until sent (issue 17).

A user schedules a message to a conversation they may post in now, for a time in the
future within `scheduled_max_horizon_days`, at most `max_scheduled_per_user` waiting at
once; the body and what it replies to get a send's checks then, and again when it is
sent. The row and its delivery job (`scheduled.send`, due at `send_at`) are written in
one transaction (the outbox): the job exists exactly when the schedule does.

The job sends through MessageService.send, the normal path (group commit, gapless seq,
events), with client_msg_id `sched-<id>`: a job run twice (a worker killed between the
send and the row's update, a redelivery by RabbitMQ) finds the stored original and
sends nothing twice. The job first claims the row (`pending` -> `sending`, only at the
version it was enqueued for), so an edit or a cancel and the delivery never both win;
an edit bumps the version and enqueues a new job at the new time (the old one then
does nothing). If the sender may no longer post there (left, archived, an announcement
channel they no longer moderate, disabled), the row is `failed` with the reason.

Every change is an event to the sender's own connections only:
`scheduled_message_created`, `scheduled_message_updated` (edited, sending, sent,
failed), `scheduled_message_deleted` (cancelled or a failed one dismissed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from tidings.core.errors import (
    CapReached,
    ErrorCode,
    InvalidOperation,
    InvalidRequest,
    NotFound,
    TidingsError,
    Unavailable,
)
from tidings.core.events import ScheduledCreated, ScheduledDeleted, ScheduledUpdated
from tidings.core.jobs import Job, JobPolicy
from tidings.core.models import FileStatus, ScheduledMessage, ScheduledState, User, UserId
from tidings.core.rules import (
    check_attachment_ids,
    check_body,
    check_can_post,
    check_not_archived,
)
from tidings.services.access import access_conversation
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.jobs import JobService
from tidings.services.messages import MessageService
from tidings.services.notifications import check_future_time
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)

SCHEDULED_SEND = "scheduled.send"
CLIENT_ID_PREFIX = "sched-"
# waiting to be sent: counted against max_scheduled_per_user
WAITING = (ScheduledState.PENDING, ScheduledState.SENDING)
# in the sender's list: the waiting ones and the failed ones (until dismissed)
LISTED = (ScheduledState.PENDING, ScheduledState.SENDING, ScheduledState.FAILED)
LIST_MAX = 1000
# a send refused for one of these will not succeed on a retry: the schedule fails
_FINAL = frozenset(
    {
        ErrorCode.NOT_FOUND,
        ErrorCode.FORBIDDEN,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_OPERATION,
        ErrorCode.INVALID_BODY,
        ErrorCode.TOO_LARGE,
        ErrorCode.CONFLICT,
        ErrorCode.REFUSED_BY_POLICY,
    }
)


def job_id(scheduled: ScheduledMessage) -> str:
    """One delivery job per version: an edit's new job never collides with the old."""
    return f"{SCHEDULED_SEND}:{scheduled.sender_id}:{scheduled.id}:{scheduled.version}"


class ScheduledService:
    def __init__(
        self,
        deps: Deps,
        jobs: JobService,
        messages: MessageService,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.d = deps
        self.jobs = jobs
        self.messages = messages
        self.limiter = limiter or RateLimiter(deps)
        jobs.register(SCHEDULED_SEND, self._deliver, JobPolicy(max_attempts=8))

    # --- checks --------------------------------------------------------------------
    def _check_send_at(self, raw: str, now: datetime) -> datetime:
        """An RFC 3339 time with a zone, in the future, within the horizon; in UTC."""
        if not isinstance(raw, str) or len(raw) > 64:
            raise InvalidRequest("send_at is not an RFC 3339 time", field="send_at")
        send_at = check_future_time(raw, "send_at", now)
        days = self.d.limits.scheduled_max_horizon_days
        if send_at > now + timedelta(days=days):
            raise InvalidRequest(f"send_at may be at most {days} days ahead", field="send_at")
        return send_at

    async def _check_may_post(
        self, tx: Tx, actor: User, scheduled: ScheduledMessage
    ) -> None:
        """What a send checks before it is queued, on the conversation as it is now."""
        conv, member = await access_conversation(tx, actor, scheduled.conversation_id)
        check_not_archived(conv)
        thread_reply = scheduled.thread_root_seq is not None and not scheduled.also_to_conversation
        check_can_post(conv.announcement, actor, member.role, thread_reply=thread_reply)
        if scheduled.reply_to_seq is not None and scheduled.reply_to_seq > conv.last_seq:
            raise NotFound("reply_to_seq names no message", reply_to_seq=scheduled.reply_to_seq)
        root = scheduled.thread_root_seq
        if root is not None and not member.first_seq <= root <= conv.last_seq:
            raise NotFound("thread root not found", thread_root_seq=root)

    def _check_body(self, body: str) -> None:
        check_body(body, self.d.limits.max_message_bytes)

    def _check_attachments(self, attachments: Sequence[str]) -> tuple[str, ...]:
        """A send's checks of the file ids it names (services/messages.py `submit`)."""
        return check_attachment_ids(attachments, self.d.files.max_attachments_per_message)

    async def _check_files(self, tx: Tx, actor: User, files: tuple[str, ...]) -> None:
        """Each one the caller's own upload, not quarantined (else not_found, as a send)."""
        if not files:
            return
        found = await tx.files_by_ids(list(files))
        for file_id in files:
            file = found.get(file_id)
            mine = file is not None and file.uploader_id == actor.id
            if not mine or file is None or file.status is FileStatus.QUARANTINED:
                raise NotFound("attachment not found (attach your own uploads)", file_id=file_id)

    # --- the sender's requests --------------------------------------------------------
    async def create(
        self,
        actor: User,
        conversation_id: str,
        body: str,
        send_at: str,
        *,
        reply_to_seq: int | None = None,
        thread_root_seq: int | None = None,
        also_to_conversation: bool = False,
        attachments: Sequence[str] = (),
    ) -> ScheduledMessage:
        """Schedule `body` (and the caller's uploads `attachments`) for `send_at`:
        `scheduled_message_created` to the caller's connections. Only in a conversation
        the caller may post in now; over max_scheduled_per_user waiting:
        invalid_operation with the limit."""
        await self.limiter.check(Action.SEND, actor.id, None)
        now = self.d.clock.now()
        self._check_body(body)
        when = self._check_send_at(send_at, now)
        for name, value in (("reply_to_seq", reply_to_seq), ("thread_root_seq", thread_root_seq)):
            if value is not None and value < 1:
                raise InvalidRequest(f"{name} must be a positive seq", field=name)
        if also_to_conversation and thread_root_seq is None:
            raise InvalidRequest(
                "also_to_conversation is for a reply in a thread (with thread_root_seq)",
                field="also_to_conversation",
            )
        files = self._check_attachments(attachments)
        async with self.d.store.write() as tx:
            conv, _ = await access_conversation(tx, actor, conversation_id)
            scheduled = ScheduledMessage(
                id=self.d.ids.new_id(),
                sender_id=actor.id,
                conversation_id=conv.id,
                body=body,
                send_at=when,
                state=ScheduledState.PENDING,
                created_at=now,
                updated_at=now,
                reply_to_seq=reply_to_seq,
                thread_root_seq=thread_root_seq,
                also_to_conversation=also_to_conversation,
                attachments=files,
            )
            await self._check_may_post(tx, actor, scheduled)
            await self._check_files(tx, actor, files)
            limit = self.d.limits.max_scheduled_per_user
            if await tx.count_scheduled(actor.id, WAITING) >= limit:
                raise CapReached(
                    f"you have the most scheduled messages allowed ({limit}): "
                    "send or cancel some first",
                    field="send_at",
                    limit=limit,
                )
            await tx.add_scheduled(scheduled)
            await self._enqueue(tx, scheduled, now)
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(ScheduledCreated(scheduled, now))
            await batch.flush()
        return scheduled

    async def _enqueue(self, tx: Tx, scheduled: ScheduledMessage, now: datetime) -> None:
        delay = max(0.0, (scheduled.send_at - now).total_seconds())
        await self.jobs.enqueue(
            tx,
            SCHEDULED_SEND,
            {"sender_id": scheduled.sender_id, "id": scheduled.id, "version": scheduled.version},
            job_id=job_id(scheduled),
            delay_seconds=delay,
        )

    async def _own(self, tx: Tx, actor: User, scheduled_id: str) -> ScheduledMessage:
        found = await tx.get_scheduled(actor.id, scheduled_id) if len(scheduled_id) <= 32 else None
        if found is None or found.state in (ScheduledState.SENT, ScheduledState.CANCELLED):
            raise NotFound("scheduled message not found", scheduled_id=scheduled_id)
        return found

    async def edit(
        self,
        actor: User,
        scheduled_id: str,
        *,
        body: str | None = None,
        send_at: str | None = None,
    ) -> ScheduledMessage:
        """Change a pending one's body and/or send_at (the same checks as at creation):
        `scheduled_message_updated`. One being sent, or failed: invalid_operation;
        another user's, sent or cancelled: not_found."""
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        if body is None and send_at is None:
            raise InvalidRequest("give body, send_at or both", field="body")
        if body is not None:
            self._check_body(body)
        when = None if send_at is None else self._check_send_at(send_at, now)
        async with self.d.store.write() as tx:
            old = await self._own(tx, actor, scheduled_id)
            if old.state is not ScheduledState.PENDING:
                raise InvalidOperation(
                    f"this scheduled message is {old.state.value}: it can no longer be edited"
                )
            new = replace(
                old,
                body=old.body if body is None else body,
                send_at=old.send_at if when is None else when,
                version=old.version + 1,
                updated_at=now,
            )
            await self._check_may_post(tx, actor, new)
            if not await tx.update_scheduled(new, state=old.state, version=old.version):
                raise InvalidOperation("this scheduled message changed meanwhile: try again")
            await self._enqueue(tx, new, now)
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(ScheduledUpdated(new, now))
            await batch.flush()
        return new

    async def cancel(self, actor: User, scheduled_id: str) -> None:
        """Cancel a pending one (or dismiss a failed one): `scheduled_message_deleted`.
        One being sent: invalid_operation; another user's, sent or cancelled: not_found."""
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            old = await self._own(tx, actor, scheduled_id)
            if old.state is ScheduledState.SENDING:
                raise InvalidOperation("this scheduled message is being sent: too late to cancel")
            new = replace(
                old, state=ScheduledState.CANCELLED, version=old.version + 1, updated_at=now
            )
            if not await tx.update_scheduled(new, state=old.state, version=old.version):
                raise InvalidOperation("this scheduled message changed meanwhile: try again")
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(ScheduledDeleted(old.conversation_id, old.id, old.sender_id, now))
            await batch.flush()

    async def list(
        self, actor: User, *, conversation_id: str | None = None
    ) -> list[ScheduledMessage]:
        """The caller's scheduled messages not sent yet (pending, sending) and the failed
        ones, the soonest first; of one conversation with `conversation_id`."""
        if conversation_id is not None and not 0 < len(conversation_id) <= 32:
            raise InvalidRequest("not a conversation id", field="conversation_id")
        async with self.d.store.read() as tx:
            return await tx.list_scheduled(
                actor.id, LISTED, conversation_id=conversation_id, limit=LIST_MAX
            )

    async def get(self, actor: User, scheduled_id: str) -> ScheduledMessage:
        async with self.d.store.read() as tx:
            return await self._own(tx, actor, scheduled_id)

    # --- the job -------------------------------------------------------------------
    async def _deliver(self, job: Job) -> None:
        """Send the scheduled message of the job's version, once: claim (pending ->
        sending), send with client_msg_id `sched-<id>` (a second run finds the original),
        then sent with its seq, or failed with why."""
        payload = job.payload
        sender_id, sid = str(payload["sender_id"]), str(payload["id"])
        version = payload["version"]
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            row = await tx.get_scheduled(sender_id, sid)
            if row is None or row.version != version:
                return  # cancelled or edited: a newer job (if any) sends it
            if row.state is ScheduledState.PENDING:
                if row.send_at > now:  # early (a clock behind the queue's): again later
                    raise _Early(f"due at {row.send_at.isoformat()}")
                claimed = replace(row, state=ScheduledState.SENDING, updated_at=now)
                if not await tx.update_scheduled(claimed, state=row.state, version=version):
                    return
                batch = EventBatch(tx, self.d.bus, now)
                batch.add(ScheduledUpdated(claimed, now))
                await batch.flush()
                row = claimed
            elif row.state is not ScheduledState.SENDING:
                return  # sent or failed already: a run again does nothing
            sender = await tx.get_user(sender_id)
        failure: TidingsError | None = None
        seq: int | None = None
        if sender is None or sender.disabled:
            failure = NotFound("the sender's account is disabled", user_id=sender_id)
        else:
            try:
                async with self.d.store.read() as tx:
                    await self._check_may_post(tx, sender, row)
                message, _ = await self.messages.send(
                    sender,
                    row.conversation_id,
                    CLIENT_ID_PREFIX + row.id,
                    row.body,
                    row.reply_to_seq,
                    row.attachments,
                    thread_root_seq=row.thread_root_seq,
                    also_to_conversation=row.also_to_conversation,
                )
                seq = message.seq
            except TidingsError as exc:
                if exc.code not in _FINAL and job.attempt < job.max_attempts:
                    raise  # unavailable, rate limited...: the job is retried
                failure = exc  # (on the last attempt, whatever the error: not left sending)
            except Exception:
                if job.attempt < job.max_attempts:
                    raise
                log.exception("scheduled_send_error", scheduled_id=row.id)
                failure = Unavailable("the message could not be sent")
        if failure is not None:
            # sent before (a run that died after the send) although refused now?
            key = (UserId(sender_id), CLIENT_ID_PREFIX + row.id)
            async with self.d.store.read() as tx:
                existing = (await tx.messages_by_client_ids([key])).get(key)
            if existing is not None and existing.conversation_id == row.conversation_id:
                failure, seq = None, existing.seq
        await self._finish(row, seq, failure)

    async def _finish(
        self, row: ScheduledMessage, seq: int | None, failure: TidingsError | None
    ) -> None:
        now = self.d.clock.now()
        if failure is None:
            done = replace(row, state=ScheduledState.SENT, sent_seq=seq, updated_at=now)
        else:
            why = f"{failure.code.value}: {failure.message}"[:500]
            done = replace(row, state=ScheduledState.FAILED, failure=why, updated_at=now)
            log.info("scheduled_send_failed", scheduled_id=row.id, reason=why)
        async with self.d.store.write() as tx:
            if await tx.update_scheduled(done, state=ScheduledState.SENDING, version=row.version):
                batch = EventBatch(tx, self.d.bus, now)
                batch.add(ScheduledUpdated(done, now))
                await batch.flush()


class _Early(Exception):
    """The job ran before its send_at (retried after a backoff)."""
