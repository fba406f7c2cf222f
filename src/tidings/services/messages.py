"""Messages: send (with group commit), history, edit, recall, reactions, read positions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from tidings.core.errors import (
    CapReached,
    Conflict,
    ConversationArchived,
    ErrorCode,
    InvalidRequest,
    InvalidThreadRoot,
    NotFound,
    RefusedByPolicy,
    TidingsError,
    Unavailable,
)
from tidings.core.events import (
    Event,
    MessageDeleted,
    MessageEdited,
    MessagePinned,
    MessageSent,
    MessageUnpinned,
    MessageUnsaved,
    ReactionChanged,
    ReadMoved,
    ThreadUpdated,
)
from tidings.core.models import (
    Conversation,
    ConversationId,
    ConversationKind,
    FileInfo,
    FileStatus,
    ForwardOrigin,
    Member,
    MemberRole,
    Message,
    MessageId,
    MessageRef,
    Pin,
    ThreadSummary,
    User,
    UserId,
)
from tidings.core.notify import EveryoneMention
from tidings.core.rules import (
    check_attachment_ids,
    check_body,
    check_can_edit,
    check_can_mention_everyone,
    check_can_pin,
    check_can_post,
    check_can_react,
    check_can_recall,
    check_client_msg_id,
    check_not_archived,
    everyone_mention,
    mentioned_usernames,
    seq_visible,
    visible_seq_limit,
)
from tidings.services.access import access_conversation
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.notifications import mention_all_policy
from tidings.services.plugins import PluginService
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import ThreadRoot, Tx

log = structlog.get_logger(__name__)
MAX_EMOJI_CHARS = 64
SEND_BATCH_MAX = 256  # sends committed together in one group commit, at most


@dataclass(slots=True)
class _SendRequest:
    sender: User
    conversation_id: str
    client_msg_id: str
    body: str
    reply_to_seq: int | None
    attachments: tuple[str, ...]  # file ids, in their order
    thread_root_seq: int | None
    also_to_conversation: bool
    # The sender awaits `future`; if it gives up (cancelled) the send is still committed:
    # `settled` says whether the writer has decided it.
    future: asyncio.Future[tuple[Message, bool]]
    asked_at: float  # the loop's clock: the write lock is waited for from then (bounded)
    settled: bool = False
    # a forward: the original, and its files (attached although someone else uploaded
    # them: the forwarder may read the message that carries them)
    forwarded_from: MessageRef | None = None
    forwarded_files: frozenset[str] = frozenset()

    def settle(self, outcome: tuple[Message, bool] | BaseException) -> None:
        self.settled = True
        if self.future.done():
            return
        if isinstance(outcome, BaseException):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


class MessageService:
    """Sends go through one writer task: whatever arrives while a transaction commits is
    committed together in the next one (group commit), then each is acknowledged."""

    def __init__(self, deps: Deps, plugins: PluginService | None = None) -> None:
        self.d = deps
        self.limiter = RateLimiter(deps)  # edits, recalls, reactions (sends: transports)
        self._queue: asyncio.Queue[_SendRequest] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The plugins' before_message hooks, or None when no plugin has one: then a send
        # goes straight to the group commit as if plugins did not exist.
        self._screen = plugins if plugins is not None and plugins.screening else None
        self._screening: dict[str, asyncio.Task[None]] = {}  # sender id -> its last one
        self._screen_tasks: set[asyncio.Task[None]] = set()

    # --- send ---------------------------------------------------------------------
    async def send(
        self,
        sender: User,
        conversation_id: str,
        client_msg_id: str,
        body: str,
        reply_to_seq: int | None = None,
        attachments: Sequence[str] = (),
        *,
        thread_root_seq: int | None = None,
        also_to_conversation: bool = False,
        forwarded_from: MessageRef | None = None,
        forwarded_files: frozenset[str] = frozenset(),
    ) -> tuple[Message, bool]:
        """Store a message; returns it and whether it is new. A retry with the same
        client_msg_id returns the original. Returns only after the commit.
        `attachments`: ids of files the sender uploaded (services/files.py).
        `thread_root_seq`: a reply in the thread of that root (`also_to_conversation`:
        shown in the main timeline too)."""
        try:
            future = self.submit(
                sender,
                conversation_id,
                client_msg_id,
                body,
                reply_to_seq,
                attachments,
                thread_root_seq=thread_root_seq,
                also_to_conversation=also_to_conversation,
                forwarded_from=forwarded_from,
                forwarded_files=forwarded_files,
            )
        except TidingsError as exc:
            counts = self.d.counts
            try:
                check_client_msg_id(client_msg_id)
                # A retry answers with the stored original whatever its own body: look it
                # up (only on this error path, never on the hot path).
                async with self.d.store.read() as tx:
                    found = await tx.messages_by_client_ids([(sender.id, client_msg_id)])
            except TidingsError as lookup_exc:
                counts.sends_refused.add(lookup_exc.code.value)
                raise
            existing = found.get((sender.id, client_msg_id))
            if existing is not None and existing.conversation_id == conversation_id:
                counts.sends_acknowledged += 1
                return existing, False
            counts.sends_refused.add(exc.code.value)
            raise
        return await future

    def submit(
        self,
        sender: User,
        conversation_id: str,
        client_msg_id: str,
        body: str,
        reply_to_seq: int | None = None,
        attachments: Sequence[str] = (),
        *,
        thread_root_seq: int | None = None,
        also_to_conversation: bool = False,
        forwarded_from: MessageRef | None = None,
        forwarded_files: frozenset[str] = frozenset(),
    ) -> asyncio.Future[tuple[Message, bool]]:
        """`send` without waiting: the request's own checks, then it joins the next group
        commit; the future resolves as `send` returns. Raises the checks' TidingsError at
        once, where `send` would first look for a stored original with that id. If the
        caller stops waiting (cancels the future), the send is still committed."""
        check_client_msg_id(client_msg_id)
        check_body(body, self.d.limits.max_message_bytes)
        if reply_to_seq is not None and reply_to_seq < 1:
            raise InvalidRequest("reply_to_seq must be a positive seq", field="reply_to_seq")
        if thread_root_seq is not None and thread_root_seq < 1:
            raise InvalidRequest(
                "thread_root_seq must be a positive seq", field="thread_root_seq"
            )
        if also_to_conversation and thread_root_seq is None:
            raise InvalidRequest(
                "also_to_conversation is for a reply in a thread (with thread_root_seq)",
                field="also_to_conversation",
            )
        files = tuple(attachments)
        if files:
            files = check_attachment_ids(files, self.d.files.max_attachments_per_message)
        loop = self._loop
        if loop is None or self._queue is None or self._writer is None or self._writer.done():
            loop = self._loop = asyncio.get_running_loop()
            if self._queue is None:
                self._queue = asyncio.Queue()
            self._writer = loop.create_task(self._write_loop())
        request = _SendRequest(
            sender,
            conversation_id,
            client_msg_id,
            body,
            reply_to_seq,
            files,
            thread_root_seq,
            also_to_conversation,
            loop.create_future(),
            loop.time(),
            forwarded_from=forwarded_from,
            forwarded_files=forwarded_files,
        )
        if self._screen is None:
            self._queue.put_nowait(request)
        else:
            self._screen_then_queue(request)
        return request.future

    def _screen_then_queue(self, request: _SendRequest) -> None:
        """The plugins' hooks run in a task of their own, before the send joins a batch
        (the batch writer never waits for a plugin). Hooks of one sender's sends run
        concurrently, but the sends join the queue in the order they came."""
        assert self._loop is not None
        sender = request.sender.id
        task = self._loop.create_task(self._screen_one(request, self._screening.get(sender)))
        self._screening[sender] = task
        self._screen_tasks.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._screen_tasks.discard(task)
            if self._screening.get(sender) is task:
                del self._screening[sender]

        task.add_done_callback(done)

    async def _screen_one(self, request: _SendRequest, before: asyncio.Task[None] | None) -> None:
        assert self._screen is not None and self._queue is not None
        refused: TidingsError | None = None
        try:
            request.body = await self._screen.screen(
                request.sender,
                request.conversation_id,
                request.body,
                client_msg_id=request.client_msg_id,
            )
        except TidingsError as exc:
            refused = exc
        if before is not None:
            await asyncio.wait([before])  # the sender's previous send is queued (or refused)
        if refused is None:
            self._queue.put_nowait(request)
            return
        try:
            if isinstance(refused, RefusedByPolicy | Unavailable):
                # a retry of a message stored before the policy changed gets the original
                key = (request.sender.id, request.client_msg_id)
                async with self.d.store.read() as tx:
                    existing = (await tx.messages_by_client_ids([key])).get(key)
                if existing is not None and existing.conversation_id == request.conversation_id:
                    request.settle((existing, False))
                    return
        except Exception as exc:  # noqa: BLE001 - reported to that sender
            request.settle(exc)
            return
        request.settle(refused)

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < SEND_BATCH_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("send_batch_failed", size=len(batch))
                self.d.counts.commit_failures += 1
                # Retry alone, so one bad send fails only itself (each within its own
                # bound for the write lock: after a lock timeout, one attempt each).
                for request in batch:
                    if request.settled:
                        continue
                    try:
                        await self._commit([request])
                    except Exception as exc:  # noqa: BLE001 - reported to that sender
                        request.settle(exc)
                        why = exc.code if isinstance(exc, TidingsError) else ErrorCode.INTERNAL
                        self.d.counts.sends_refused.add(why.value)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_SendRequest]) -> None:
        now = self.d.clock.now()
        started = time.perf_counter()
        async with self.d.store.write(batch[0].asked_at, urgent=True) as tx:  # the batch's oldest
            events = EventBatch(tx, self.d.bus, now)
            results = await self._store_batch(tx, events, batch, now)
            await events.flush()
        # counted once per batch (services/metrics.py): the hot path's only cost here
        counts = self.d.counts
        counts.commit_seconds.observe(time.perf_counter() - started)
        counts.commit_batch_size.observe(len(batch))
        acknowledged = len(batch)
        for request, outcome in zip(batch, results, strict=True):
            request.settle(outcome)
            if isinstance(outcome, TidingsError):
                acknowledged -= 1
                counts.sends_refused.add(outcome.code.value)
        counts.sends_acknowledged += acknowledged

    async def _store_batch(
        self, tx: Tx, events: EventBatch, batch: list[_SendRequest], now: datetime
    ) -> list[tuple[Message, bool] | TidingsError]:
        """Every send of the batch is checked against what two queries read, then all the
        new messages are written together: the statements are per batch, not per send.
        A send that fails a check fails alone, before anything of it is written."""
        keys = [(r.sender.id, r.client_msg_id) for r in batch]
        stored = await tx.messages_by_client_ids(keys)
        targets = await tx.send_targets([(r.conversation_id, r.sender.id) for r in batch])
        heads, active = targets.last_seqs, targets.active
        wanted = [fid for r in batch for fid in r.attachments]
        # the batch's files in one query (none at all without attachments)
        files = await tx.files_by_ids(wanted) if wanted else {}
        # the roots the batch's replies name, in one query (none without replies)
        root_keys = [
            (r.conversation_id, r.thread_root_seq) for r in batch if r.thread_root_seq is not None
        ]
        roots = await tx.thread_roots(root_keys) if root_keys else {}
        last_seqs: dict[str, int] = {}
        new: list[Message] = []
        results: list[tuple[Message, bool] | TidingsError] = []
        for r, key in zip(batch, keys, strict=True):
            try:
                existing = stored.get(key)
                if existing is not None:  # a retry, perhaps of a send earlier in this batch
                    if existing.conversation_id != r.conversation_id:
                        raise Conflict(
                            "client_msg_id was already used for another conversation",
                            field="client_msg_id",
                        )
                    results.append((existing, False))
                    continue
                cid = r.conversation_id
                if (cid, r.sender.id) not in active:  # missing, never joined, or left
                    raise NotFound("conversation not found", conversation_id=cid)
                if cid in targets.archived:
                    raise ConversationArchived(
                        "this conversation is archived (read-only): unarchive it first",
                        conversation_id=cid,
                    )
                check_can_post(  # a reply only in its thread is open to every member
                    cid in targets.announcement,
                    r.sender,
                    targets.roles[(cid, r.sender.id)],
                    thread_reply=r.thread_root_seq is not None and not r.also_to_conversation,
                )
                last_seq = last_seqs.get(cid, heads[cid])
                if r.reply_to_seq is not None and r.reply_to_seq > last_seq:
                    raise NotFound("reply_to_seq names no message", reply_to_seq=r.reply_to_seq)
                if r.thread_root_seq is not None:
                    first = targets.first_seqs.get((cid, r.sender.id), 1)
                    _check_root(roots, cid, r.thread_root_seq, first, last_seq)
                attached = _attachments(r, files)
                everyone = everyone_mention(r.body)
                if everyone is not None:  # rare: its one extra read only then
                    await self._check_everyone(
                        tx, cid, r.sender, targets.roles[(cid, r.sender.id)], everyone
                    )
                mentions = await _resolve_mentions(tx, cid, r.body)
                message = Message(
                    id=MessageId(self.d.ids.new_id()),
                    conversation_id=ConversationId(cid),
                    seq=last_seq + 1,
                    client_msg_id=r.client_msg_id,
                    sender_id=r.sender.id,
                    body=r.body,
                    reply_to_seq=r.reply_to_seq,
                    mentions=mentions,
                    created_at=now,
                    attachments=attached,
                    thread_root_seq=r.thread_root_seq,
                    also_to_conversation=r.also_to_conversation,
                    forwarded_from=r.forwarded_from,
                )
            except TidingsError as exc:
                results.append(exc)
                continue
            last_seqs[cid] = message.seq
            stored[key] = message
            new.append(message)
            if message.thread_root_seq is None:  # a root of a later send in this batch
                roots[(cid, message.seq)] = ThreadRoot(message.sender_id, None, False)
            results.append((message, True))
            events.add(MessageSent(message, now))
        await tx.append_messages(new, last_seqs, now)
        replies = [m for m in new if m.thread_root_seq is not None]
        if replies:
            for summary in await _add_replies(tx, replies, self.d.limits.thread_participants_max):
                events.add(ThreadUpdated(summary, now))
        return results

    async def _check_everyone(
        self, tx: Tx, cid: str, sender: User, role: MemberRole, mention: EveryoneMention
    ) -> None:
        """@all / @channel / @here: only from a role the conversation's size allows
        (settings mention_all_*; core/rules.py:check_can_mention_everyone)."""
        conv = await tx.get_conversation(cid)
        if conv is None:  # the send's own checks refuse it
            return
        policy = mention_all_policy(self.d)
        check_can_mention_everyone(policy, mention, sender, role, conv.member_count, conv.kind)

    async def close(self) -> None:
        """Finish the sends already accepted, then stop the writer."""
        if self._screen_tasks:  # sends still in the plugins' hooks join the queue first
            await asyncio.wait(set(self._screen_tasks))
        if self._writer is None:
            return
        assert self._queue is not None
        if not self._writer.done():
            await self._queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    # --- read ---------------------------------------------------------------------
    async def history(
        self,
        actor: User,
        conversation_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 50,
        thread_root_seq: int | None = None,
    ) -> tuple[list[Message], bool]:
        """A page of messages, ascending by seq. A removed member sees only what was
        sent before their removal. `thread_root_seq`: only the replies of that thread
        (a root the caller may see, else not_found)."""
        limit = max(1, min(limit, self.d.limits.history_page_max))
        # What the client has seen, from its own cursor: a replica must have reached it.
        seen = after_seq if after_seq is not None else (before_seq or 1) - 1

        async def fresh_enough(tx: Tx) -> bool:
            conv = await tx.get_conversation(conversation_id)
            return seen > 0 and conv is not None and conv.last_seq >= seen

        async with self.d.store.read_replica(fresh_enough) as tx:
            _conv, member = await access_conversation(tx, actor, conversation_id, allow_left=True)
            max_seq = visible_seq_limit(member)
            if thread_root_seq is not None:
                if (max_seq is not None and thread_root_seq > max_seq) or (
                    thread_root_seq < member.first_seq  # history not shared with them
                ):
                    raise NotFound("thread root not found", thread_root_seq=thread_root_seq)
                found = await tx.thread_roots([(conversation_id, thread_root_seq)])
                root = found.get((conversation_id, thread_root_seq))
                if root is None or root.thread_root_seq is not None:
                    raise NotFound("thread root not found", thread_root_seq=thread_root_seq)
            page = await tx.list_messages(
                conversation_id,
                before_seq=before_seq,
                after_seq=after_seq,
                limit=limit,
                max_seq=max_seq,
                min_seq=member.first_seq,
                thread_root_seq=thread_root_seq,
            )
        return page.messages, page.more

    # --- change -------------------------------------------------------------------
    async def edit(self, actor: User, conversation_id: str, seq: int, body: str) -> Message:
        check_body(body, self.d.limits.max_message_bytes)
        await self.limiter.check(Action.EDIT, actor.id, None)
        if self._screen is not None:  # before the write transaction, never inside it
            body = await self._screen.screen(actor, conversation_id, body, edit_seq=seq)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            check_not_archived(conv)
            message = await _message(tx, conv.id, seq, member)
            check_can_edit(message, actor, now, self.d.limits.edit_window)
            everyone = everyone_mention(body)
            if everyone is not None and everyone is not everyone_mention(message.body):
                await self._check_everyone(tx, conv.id, actor, member.role, everyone)
            mentions = await _resolve_mentions(tx, conv.id, body)
            await tx.edit_message(conv.id, seq, body, mentions, edited_at=now)
            updated = await _message(tx, conv.id, seq)
            await _emit(tx, self.d, now, MessageEdited(updated, now))
        return updated

    async def recall(self, actor: User, conversation_id: str, seq: int) -> Message:
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            check_not_archived(conv)
            message = await _message(tx, conv.id, seq, member)
            check_can_recall(message, actor, member)
            if message.deleted:
                return message
            await tx.recall_message(conv.id, seq)
            updated = await _message(tx, conv.id, seq)
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(MessageDeleted(updated, actor.id, now))
            root = message.thread_root_seq
            if root is not None:  # a reply: its root's summary counted again, exactly
                cap = self.d.limits.thread_participants_max
                summary = await tx.count_thread(conv.id, root, cap, None)
                await tx.put_thread_summaries([summary], {(conv.id, root)})
                batch.add(ThreadUpdated(summary, now))
            if await tx.remove_pin(conv.id, seq):  # a recalled message is pinned no more
                batch.add(MessageUnpinned(conv.id, seq, actor.id, now))
            for saver in await tx.remove_saved_of_message(conv.id, seq):  # nor saved
                batch.add(MessageUnsaved(conv.id, seq, saver, now))
            await batch.flush()
        return updated

    # --- pins ---------------------------------------------------------------------
    async def pin(self, actor: User, conversation_id: str, seq: int) -> tuple[Pin, Message]:
        """Pin message `seq` (owners, moderators, org admins who are members): every
        member gets `message_pinned`. Pinning a pinned one changes nothing and returns
        its pin. A recalled message, or one the caller may not read: not_found; more
        than max_pins_per_conversation: invalid_operation with the limit."""
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            check_can_pin(actor, member)
            check_not_archived(conv)
            message = await _message(tx, conv.id, seq, member)
            if message.deleted:
                raise NotFound("message not found", seq=seq)
            existing = await tx.get_pin(conv.id, seq)
            if existing is not None:
                return existing, message
            limit = self.d.limits.max_pins_per_conversation
            if await tx.count_pins(conv.id) >= limit:
                raise CapReached(
                    f"this conversation has the most pinned messages allowed ({limit})",
                    field="seq",
                    limit=limit,
                )
            pin = Pin(conv.id, seq, actor.id, now)
            await tx.add_pin(pin)
            await _emit(tx, self.d, now, MessagePinned(conv.id, seq, actor.id, now))
        return pin, message

    async def unpin(self, actor: User, conversation_id: str, seq: int) -> None:
        """Unpin message `seq` (owners, moderators, org admins who are members):
        `message_unpinned` to every member; unpinning one that is not pinned changes
        nothing."""
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            check_can_pin(actor, member)
            check_not_archived(conv)
            if await tx.remove_pin(conv.id, seq):
                await _emit(tx, self.d, now, MessageUnpinned(conv.id, seq, actor.id, now))

    async def pins(self, actor: User, conversation_id: str) -> list[tuple[Pin, Message]]:
        """The conversation's pinned messages the caller may read, the newest pin first,
        each with the message as it is now."""
        async with self.d.store.read() as tx:
            _conv, member = await access_conversation(tx, actor, conversation_id, allow_left=True)
            found = await tx.list_pins(conversation_id, member.first_seq, member.left_seq)
            messages = await tx.messages_by_keys([(conversation_id, p.seq) for p in found])
        return [
            (p, messages[(conversation_id, p.seq)])
            for p in found
            if (conversation_id, p.seq) in messages
        ]

    async def react(
        self, actor: User, conversation_id: str, seq: int, emoji: str, on: bool
    ) -> Message:
        """Add (`on`) or take back the caller's `emoji` on a message; returns the message
        as it is after. Members see the change only (`ReactionChanged`, with the emoji's
        new count), never the whole message again."""
        if not 1 <= len(emoji) <= MAX_EMOJI_CHARS or not emoji.isprintable() or emoji.isspace():
            raise InvalidRequest("emoji must be 1 to 64 printable characters", field="emoji")
        await self.limiter.check(Action.REACTION, actor.id, None)
        limits = self.d.limits
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            check_not_archived(conv)
            message = await _message(tx, conv.id, seq, member)
            if message.deleted:
                raise NotFound("message not found", seq=seq)
            if on:
                check_can_react(
                    message,
                    actor.id,
                    emoji,
                    max_emoji=limits.max_reaction_emoji_per_message,
                    max_per_user=limits.max_reactions_per_user_per_message,
                )
            if not await tx.set_reaction(conv.id, seq, emoji, actor.id, on, now):
                return message
            updated = _with_reaction(message, emoji, actor.id, on)
            count = len(updated.reactions.get(emoji, ()))
            event = ReactionChanged(conv.id, seq, emoji, actor.id, on, count, now)
            await _emit(tx, self.d, now, event)
        return updated

    async def mark_read(self, actor: User, conversation_id: str, seq: int) -> tuple[int, int]:
        """Move the caller's read position forward (never back); returns (read_seq, unread).
        Direct and group members see each other's positions (read receipts); in a
        channel only the reader's own devices are told."""
        if seq < 0:
            raise InvalidRequest("seq must not be negative", field="seq")
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            target = min(seq, conv.last_seq)
            moved = await tx.advance_read(conv.id, actor.id, target)
            read_seq = max(member.read_seq, target)
            unread = await _unread(tx, conv, read_seq)
            if moved:
                private = conv.kind is ConversationKind.CHANNEL  # no read receipts there
                event = ReadMoved(conv.id, actor.id, read_seq, unread, private, now)
                await _emit(tx, self.d, now, event)
        return read_seq, unread

    # --- forwarding -----------------------------------------------------------------
    async def forward(
        self,
        actor: User,
        conversation_id: str,
        seq: int,
        target_id: str,
        client_msg_id: str,
    ) -> tuple[Message, bool]:
        """Forward message `seq` (one the caller may read, not recalled) into the
        conversation `target_id`: a new message there through the normal send path (the
        same checks, group commit and idempotency on `client_msg_id`), with the
        original's body and files and `forwarded_from` naming the original (the first
        one: forwarding a forwarded copy names what the copy names). Its files
        become readable to the target's members as any attachment is."""
        async with self.d.store.read() as tx:
            _conv, member = await access_conversation(tx, actor, conversation_id, allow_left=True)
            original = await tx.get_message(conversation_id, seq)
        if original is None or original.deleted or not seq_visible(member, seq):
            raise NotFound("message not found", seq=seq)
        files = tuple(f.id for f in original.attachments if f.status is not FileStatus.QUARANTINED)
        return await self.send(
            actor,
            target_id,
            client_msg_id,
            original.body,
            attachments=files,
            # a forward of a forwarded copy names the first original, not the copy
            forwarded_from=original.forwarded_from or MessageRef(original.conversation_id, seq),
            forwarded_files=frozenset(files),
        )

    async def forward_origin(self, actor: User, conversation_id: str, seq: int) -> ForwardOrigin:
        """The original of forwarded message `seq`, for a caller who may read both the
        forwarded copy and the original (not recalled); anyone else: not_found (they
        see only that it was forwarded)."""
        async with self.d.store.read() as tx:
            _conv, member = await access_conversation(tx, actor, conversation_id, allow_left=True)
            message = await _message(tx, conversation_id, seq, member)
            ref = message.forwarded_from
            if ref is None or message.deleted:
                raise NotFound("not a forwarded message", seq=seq)
            try:
                source, source_member = await access_conversation(
                    tx, actor, ref.conversation_id, allow_left=True
                )
                original = await _message(tx, ref.conversation_id, ref.seq, source_member)
            except NotFound:
                raise NotFound("the original is not one you may read", seq=seq) from None
            if original.deleted:
                raise NotFound("the original is not one you may read", seq=seq)
        return ForwardOrigin(source, ref.seq, original.sender_id)

    async def mark_unread(
        self, actor: User, conversation_id: str, from_seq: int | None = None
    ) -> tuple[int, int]:
        """Mark the conversation unread from message `from_seq` on (absent: its last
        message): the caller's read position moves back to `from_seq - 1`, never
        forward (already unread from there: nothing changes); returns (read_seq, unread).
        The same `read` event as a forward move tells the caller's other devices (and,
        outside channels, the other members: read receipts show the position as it is).
        A message the caller may not read (before their first seq, or none): not_found."""
        if from_seq is not None and from_seq < 1:
            raise InvalidRequest("from_seq must be at least 1", field="from_seq")
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            if conv.last_seq < member.first_seq:  # nothing the caller may read
                raise NotFound("no message to mark unread", seq=from_seq or 0)
            seq = conv.last_seq if from_seq is None else from_seq
            if seq > conv.last_seq or not seq_visible(member, seq):
                raise NotFound("message not found", seq=seq)
            target = seq - 1
            read_seq = min(member.read_seq, target)
            unread = await _unread(tx, conv, read_seq)
            if await tx.move_read_back(conv.id, actor.id, target):
                private = conv.kind is ConversationKind.CHANNEL
                event = ReadMoved(conv.id, actor.id, read_seq, unread, private, now)
                await _emit(tx, self.d, now, event)
        return read_seq, unread


async def _unread(tx: Tx, conv: Conversation, read_seq: int) -> int:
    """A member's unread from read position `read_seq`: the messages after it that the
    main timeline shows (thread-only replies are their threads' unread, apart)."""
    if read_seq >= conv.last_seq:
        return 0
    return max(0, conv.last_seq - read_seq - await tx.thread_only_after(conv.id, read_seq))


def _check_root(
    roots: dict[tuple[str, int], ThreadRoot], cid: str, root_seq: int, first: int, last_seq: int
) -> None:
    """A reply's root: a message of the same conversation the sender may read (from
    their `first` seq, one already sent: at most its `last_seq`), no reply itself, not
    recalled."""
    root = roots.get((cid, root_seq)) if first <= root_seq <= last_seq else None
    if root is None:
        raise NotFound("thread root not found", thread_root_seq=root_seq)
    if root.thread_root_seq is not None:
        raise InvalidThreadRoot(
            "a reply cannot have a thread: reply in the thread of its root",
            field="thread_root_seq",
            thread_root_seq=root_seq,
        )
    if root.deleted:
        raise InvalidThreadRoot(
            "the thread's root was recalled", field="thread_root_seq", thread_root_seq=root_seq
        )


async def _add_replies(tx: Tx, replies: list[Message], cap: int) -> list[ThreadSummary]:
    """The roots' summaries after a batch's replies (ascending by seq): read once, one
    row written per root (all writes serialize on the stream counter's row, so the
    read-modify-write is exact)."""
    keys = list(dict.fromkeys((m.conversation_id, m.thread_root_seq or 0) for m in replies))
    stored = await tx.thread_summaries(keys)
    summaries = dict(stored)
    for m in replies:
        key = (m.conversation_id, m.thread_root_seq or 0)
        old = summaries.get(key)
        before = old.participants if old is not None else ()
        summaries[key] = ThreadSummary(
            conversation_id=m.conversation_id,
            root_seq=key[1],
            reply_count=(old.reply_count if old is not None else 0) + 1,
            last_reply_seq=m.seq,
            last_reply_at=m.created_at,
            participants=(m.sender_id, *(u for u in before if u != m.sender_id))[:cap],
        )
    changed = [summaries[key] for key in keys]
    await tx.put_thread_summaries(changed, set(stored))
    return changed


async def _message(
    tx: Tx, conversation_id: str, seq: int, member: Member | None = None
) -> Message:
    """Message `seq`; with `member`, only one within their range (first_seq: history
    not shared with new members), else not_found as if it did not exist."""
    message = await tx.get_message(conversation_id, seq)
    if message is None or (member is not None and not seq_visible(member, seq)):
        raise NotFound("message not found", seq=seq)
    return message


def _attachments(request: _SendRequest, files: dict[str, FileInfo]) -> tuple[FileInfo, ...]:
    """The files a send names: each uploaded by its sender (anyone else's, a missing or
    a quarantined one: not_found, as if it did not exist)."""
    found = []
    for file_id in request.attachments:
        file = files.get(file_id)
        if (
            file is None
            or (file.uploader_id != request.sender.id and file_id not in request.forwarded_files)
            or file.status is FileStatus.QUARANTINED
        ):
            raise NotFound("attachment not found (attach your own uploads)", file_id=file_id)
        found.append(file)
    return tuple(found)


def _with_reaction(message: Message, emoji: str, user_id: UserId, on: bool) -> Message:
    """`message` after the store changed one reaction on it, as the store would read it
    back: an emoji's users in the order they reacted, an emoji nobody has left out."""
    reactions = {e: list(users) for e, users in message.reactions.items()}
    users = reactions.setdefault(emoji, [])
    if on:
        users.append(user_id)
    else:
        users.remove(user_id)
    if not users:
        del reactions[emoji]
    return replace(message, reactions=reactions)


async def _emit(tx: Tx, deps: Deps, now: datetime, event: Event) -> None:
    batch = EventBatch(tx, deps.bus, now)
    batch.add(event)
    await batch.flush()


async def _resolve_mentions(tx: Tx, conversation_id: str, body: str) -> tuple[UserId, ...]:
    """`@username` of active members of this conversation, as user ids."""
    names = mentioned_usernames(body)
    if not names:
        return ()
    found = []
    for user in await tx.users_by_usernames(sorted(names)):
        member = await tx.get_member(conversation_id, user.id)
        if member is not None and member.active:
            found.append(user.id)
    return tuple(sorted(found))
