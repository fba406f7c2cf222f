"""Incoming webhooks and slash commands (docs/integrations.md).

An incoming webhook is a secret URL that posts into one conversation as its
integration user: a bot account made for it (no token, so it signs in nowhere), a
member of that conversation. A post is a normal send (MessageService): the same
checks, idempotence on `client_msg_id`, group commit and fan-out; then the post is
counted (and, with `audit_incoming_posts`, audited) in a transaction of its own.

A slash command `/name` has a target: an outgoing URL or a bot. Invoking it writes the
invocation and its job in one transaction; the job calls the target (the Outbound port
the outgoing webhooks use, outbound/http.py: SSRF-guarded; signed, the answer bounded)
or hands the bot a `command` frame on its connections.
The reply, in the target's answer or later through the invocation's response URL
(signed, expiring, a few uses), is posted in the conversation as the command's user
(`in_channel`) or shown only to the caller in an `ephemeral` frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog

from tidings.core.audit import AuditAction
from tidings.core.clock import new_token
from tidings.core.errors import (
    CapReached,
    Conflict,
    Forbidden,
    InvalidOperation,
    InvalidRequest,
    NotFound,
    TidingsError,
)
from tidings.core.events import MemberAdded
from tidings.core.integrations import (
    MAX_DESCRIPTION_CHARS,
    MAX_URL_CHARS,
    MAX_USAGE_CHARS,
    IncomingWebhook,
    Invocation,
    ResponseType,
    SlashCommand,
    TargetKind,
    check_command_name,
    check_command_text,
    check_target_url,
    secret_hash,
    slack_text,
)
from tidings.core.jobs import Job, JobPolicy, Permanent
from tidings.core.models import (
    ConversationId,
    ConversationKind,
    Member,
    MemberRole,
    Message,
    OrgRole,
    PresenceState,
    User,
    UserId,
)
from tidings.core.rules import MAX_NAME_CHARS, check_admin, check_body, clean_text, search_key
from tidings.core.webhooks import check_url, signature
from tidings.outbound.ports import Outbound, Refused, Unreachable
from tidings.protocol.wire import command_frame, ephemeral_frame
from tidings.services.access import access_conversation
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.jobs import JobService
from tidings.services.messages import MessageService
from tidings.services.presence import PresenceService
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import SealedSecret, Tx

log = structlog.get_logger(__name__)
USER_AGENT = "Tidings-Integrations/1"

NO_PASSWORD = "!integration"  # not an argon2 hash: nothing signs in as an integration user
HOOK_PATH = "/api/v1/hooks"
RESPONSE_PATH = "/api/v1/command-responses"
RESPONSE_LINK = "command response"  # the keyring's purpose of response URL signatures
COMMAND_JOB = "command.invoke"


def hook_url(base: str, hook_id: str, secret: str) -> str:
    return f"{base.rstrip('/')}{HOOK_PATH}/{hook_id}/{secret}"


def _check_name(name: str) -> str:
    return clean_text(name, field="name", max_chars=MAX_NAME_CHARS)


async def _integration_user(tx: Tx, deps: Deps, kind: str, name: str, now: datetime) -> User:
    """A bot account for an integration (`hook.xxxx`, `cmd.xxxx`): no password, no token."""
    user_id = deps.ids.new_id()
    user = User(
        id=UserId(user_id),
        username=f"{kind}.{user_id[-12:]}",
        display_name=name,
        role=OrgRole.MEMBER,
        disabled=False,
        created_at=now,
        bot=True,
    )
    await tx.insert_user(user, NO_PASSWORD, search_key(user.username, name))
    return user


async def _join(tx: Tx, deps: Deps, user: User, conversation_id: str, by: UserId) -> None:
    """Make `user` an active member of the conversation (a member_added event), unless
    it is one already."""
    current = await tx.get_member(conversation_id, user.id)
    if current is not None and current.active:
        return
    conv = await tx.get_conversation(conversation_id)
    if conv is None:
        raise NotFound("conversation not found", conversation_id=conversation_id)
    if conv.kind is ConversationKind.DIRECT:
        raise InvalidOperation("a direct conversation takes no integration")
    now = deps.clock.now()
    batch = EventBatch(tx, deps.bus, now)
    position = await batch.reserve(1)
    member = Member(conv.id, user.id, MemberRole.MEMBER, conv.last_seq, now, position)
    await tx.upsert_member(member)
    updated = await tx.get_conversation(conversation_id)
    assert updated is not None
    batch.add(MemberAdded(updated, (user.id,), by, now, member.first_seq))
    await batch.flush()


# --- incoming webhooks ------------------------------------------------------------------
class IncomingWebhookService:
    def __init__(self, deps: Deps, messages: MessageService, limiter: RateLimiter) -> None:
        self.d = deps
        self.messages = messages
        self.limiter = limiter

    async def _manageable(self, tx: Tx, actor: User | None, conversation_id: str) -> None:
        """Admins manage every conversation's incoming webhooks, owners their own;
        anyone else learns nothing of a conversation they are not in."""
        if actor is None or actor.role.is_admin:
            if await tx.get_conversation(conversation_id) is None:
                raise NotFound("conversation not found", conversation_id=conversation_id)
            return
        _conv, member = await access_conversation(tx, actor, conversation_id)
        if member.role is not MemberRole.OWNER:
            raise Forbidden(
                "only the conversation's owners and admins manage its incoming webhooks"
            )

    async def _hook(self, tx: Tx, actor: User | None, hook_id: str) -> IncomingWebhook:
        hook = await tx.get_incoming_webhook(hook_id)
        if hook is None:
            raise NotFound("incoming webhook not found")
        try:
            await self._manageable(tx, actor, hook.conversation_id)
        except NotFound:
            raise NotFound("incoming webhook not found") from None
        return hook

    async def create(
        self, actor: User | None, conversation_id: str, name: str
    ) -> tuple[IncomingWebhook, str]:
        """A new incoming webhook and the secret of its URL (returned once: only its
        hash is kept). Its integration user joins the conversation."""
        shown = _check_name(name)
        now = self.d.clock.now()
        secret = new_token()
        async with self.d.store.write() as tx:
            await self._manageable(tx, actor, conversation_id)
            cap = self.d.integrations.max_incoming_webhooks_per_conversation
            if await tx.count_incoming_webhooks(conversation_id) >= cap:
                raise CapReached(
                    f"a conversation has at most {cap} incoming webhooks",
                    field="conversation_id",
                    limit=cap,
                )
            user = await _integration_user(tx, self.d, "hook", shown, now)
            by = user.id if actor is None else actor.id
            await _join(tx, self.d, user, conversation_id, by)
            hook = IncomingWebhook(
                id=self.d.ids.new_id(),
                conversation_id=ConversationId(conversation_id),
                name=shown,
                user_id=user.id,
                created_by=None if actor is None else actor.id,
                created_at=now,
            )
            await tx.insert_incoming_webhook(hook, secret_hash(secret))
            await self._audit(tx, actor, AuditAction.INCOMING_WEBHOOK_CREATED, hook, name=shown)
        return hook, secret

    async def list(self, actor: User | None, conversation_id: str | None) -> list[IncomingWebhook]:
        """One conversation's (its owners and admins), or every one (admins)."""
        async with self.d.store.read() as tx:
            if conversation_id is None:
                check_admin(actor, "list every incoming webhook")
            else:
                await self._manageable(tx, actor, conversation_id)
            return await tx.list_incoming_webhooks(conversation_id)

    async def get(self, actor: User | None, hook_id: str) -> IncomingWebhook:
        async with self.d.store.read() as tx:
            return await self._hook(tx, actor, hook_id)

    async def update(
        self,
        actor: User | None,
        hook_id: str,
        *,
        name: str | None = None,
        disabled: bool | None = None,
    ) -> IncomingWebhook:
        """Rename (its integration user too) or disable / enable: a disabled webhook's
        URL answers not_found."""
        shown = None if name is None else _check_name(name)
        async with self.d.store.write() as tx:
            hook = await self._hook(tx, actor, hook_id)
            changes: dict[str, object] = {}
            if shown is not None and shown != hook.name:
                changes["name"] = shown
                user = await tx.get_user(hook.user_id)
                if user is not None:
                    await tx.set_display_name(user.id, shown, search_key(user.username, shown))
            if disabled is not None and disabled != hook.disabled:
                changes["disabled"] = disabled
            if not changes:
                return hook
            await tx.update_incoming_webhook(hook.id, name=shown, disabled=disabled)
            await self._audit(tx, actor, AuditAction.INCOMING_WEBHOOK_UPDATED, hook, **changes)
            updated = await tx.get_incoming_webhook(hook.id)
        assert updated is not None
        return updated

    async def rotate(self, actor: User | None, hook_id: str) -> tuple[IncomingWebhook, str]:
        """A new URL secret: the old URL stops working at once."""
        secret = new_token()
        async with self.d.store.write() as tx:
            hook = await self._hook(tx, actor, hook_id)
            await tx.update_incoming_webhook(hook.id, secret_hash=secret_hash(secret))
            await self._audit(tx, actor, AuditAction.INCOMING_WEBHOOK_ROTATED, hook)
        return hook, secret

    async def delete(self, actor: User | None, hook_id: str) -> None:
        """The URL stops working; the messages it posted stay, with their sender."""
        async with self.d.store.write() as tx:
            hook = await self._hook(tx, actor, hook_id)
            await tx.delete_incoming_webhook(hook.id)
            await tx.set_disabled(hook.user_id, True)
            await self._audit(tx, actor, AuditAction.INCOMING_WEBHOOK_DELETED, hook)

    async def post(
        self,
        hook_id: str,
        secret: str,
        body: str,
        client_msg_id: str | None = None,
        *,
        address: str | None = None,
    ) -> tuple[Message, bool]:
        """Post `body` through the webhook whose URL this is; a retry with the same
        `client_msg_id` returns the first message. A wrong secret, a disabled or deleted
        webhook: not_found, all alike."""
        check_body(body, self.d.limits.max_message_bytes)
        async with self.d.store.read() as tx:
            hook = await tx.incoming_webhook_by_secret(hook_id, secret_hash(secret))
            user = None if hook is None else await tx.get_user(hook.user_id)
        if hook is None or hook.disabled or user is None or user.disabled:
            raise NotFound("incoming webhook not found")
        await self.limiter.check(Action.INCOMING_WEBHOOK, hook.id, None)
        await self.limiter.check(Action.SEND, user.id, address)
        message, created = await self.messages.send(
            user, hook.conversation_id, client_msg_id or self.d.ids.new_id(), body
        )
        if created:
            async with self.d.store.write() as tx:
                await tx.count_incoming_post(hook.id, message.created_at)
                if self.d.integrations.audit_incoming_posts:
                    await record(
                        tx,
                        self.d.clock,
                        AuditAction.INCOMING_WEBHOOK_POSTED,
                        actor_id=user.id,
                        target_id=hook.id,
                        details={"conversation_id": hook.conversation_id, "seq": message.seq},
                    )
        return message, created

    async def _audit(
        self,
        tx: Tx,
        actor: User | None,
        action: str,
        hook: IncomingWebhook,
        **details: object,
    ) -> None:
        await record(
            tx,
            self.d.clock,
            action,
            actor_id=None if actor is None else actor.id,
            target_id=hook.id,
            details={"conversation_id": hook.conversation_id, "user_id": hook.user_id, **details},
        )


# --- slash commands -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reply:
    """What a target answered: text and where it goes."""

    text: str
    response_type: ResponseType


def reply_of(data: object) -> Reply | None:
    """A reply body (the target's answer, or a POST to the response URL): Slack's
    `{"text", "response_type", "blocks", "attachments"}`, or Tidings' `body` for
    `text`. None when it holds no text (nothing is posted)."""
    if not isinstance(data, dict):
        raise InvalidRequest("a reply must be a JSON object")
    fields: dict[str, Any] = dict(data)
    if "text" not in fields and isinstance(fields.get("body"), str):
        fields["text"] = fields["body"]
    kind = fields.get("response_type", ResponseType.EPHEMERAL.value)
    if kind not in (ResponseType.EPHEMERAL.value, ResponseType.IN_CHANNEL.value):
        raise InvalidRequest(
            "response_type must be 'ephemeral' or 'in_channel'", field="response_type"
        )
    text = slack_text(fields).strip()
    return Reply(text, ResponseType(kind)) if text else None


class CommandService:
    def __init__(
        self,
        deps: Deps,
        jobs: JobService,
        messages: MessageService,
        presence: PresenceService,
        limiter: RateLimiter,
        outbound: Outbound,
    ) -> None:
        self.d = deps
        self.jobs = jobs
        self.presence = presence
        self.messages = messages
        self.limiter = limiter
        self.outbound = outbound  # SSRF-guarded, shared with the outgoing webhooks
        cfg = deps.integrations
        jobs.register(
            COMMAND_JOB,
            self.run,
            JobPolicy(
                max_attempts=cfg.command_max_attempts,
                timeout_seconds=cfg.command_timeout_seconds * 2 + 10,
            ),
        )

    # --- managing ----------------------------------------------------------------------
    async def create(
        self,
        actor: User | None,
        name: str,
        *,
        url: str | None = None,
        bot_id: str | None = None,
        description: str = "",
        usage: str = "",
        display_name: str | None = None,
    ) -> tuple[SlashCommand, str | None]:
        """Register `/name` with an outgoing URL (returns its signing secret, once) or a
        bot (no secret: the bot gets a frame on its own connections)."""
        check_admin(actor, "manage slash commands")
        name = check_command_name(name)
        description = clean_text(
            description, field="description", max_chars=MAX_DESCRIPTION_CHARS, allow_empty=True
        )
        usage = clean_text(usage, field="usage", max_chars=MAX_USAGE_CHARS, allow_empty=True)
        if (url is None) == (bot_id is None):
            raise InvalidRequest("give a command either a url or a bot_id", field="url")
        now = self.d.clock.now()
        command_id = self.d.ids.new_id()
        secret: str | None = None
        sealed = SealedSecret("", "")
        async with self.d.store.write() as tx:
            if len(await tx.list_commands()) >= self.d.integrations.max_commands:
                cap = self.d.integrations.max_commands
                raise CapReached(f"at most {cap} slash commands", field="name", limit=cap)
            if await tx.command_by_name(name) is not None:
                raise Conflict(f"command /{name} exists", field="name")
            if url is not None:
                target, target_url = TargetKind.URL, check_target_url(url)
                shown = _check_name(display_name or f"/{name}")
                speaker = await _integration_user(tx, self.d, "cmd", shown, now)
                secret = new_token()
                sealed = SealedSecret(*self.d.keyring.seal_secret(command_id, secret))
            else:
                target, target_url = TargetKind.BOT, None
                bot = await tx.get_user(bot_id or "")
                if bot is None or not bot.bot or bot.disabled:
                    raise NotFound("bot not found", user_id=bot_id or "")
                speaker = bot
            command = SlashCommand(
                id=command_id,
                name=name,
                description=description,
                usage=usage,
                target=target,
                url=target_url,
                user_id=speaker.id,
                created_by=None if actor is None else actor.id,
                created_at=now,
            )
            await tx.insert_command(command, sealed)
            await self._audit(
                tx,
                actor,
                AuditAction.COMMAND_CREATED,
                command,
                target=target.value,
                url=target_url,
                bot_id=bot_id,
            )
        return command, secret

    async def visible(self, actor: User) -> list[SlashCommand]:
        """The commands anyone may invoke (for the composer's autocomplete)."""
        async with self.d.store.read() as tx:
            return [c for c in await tx.list_commands() if not c.disabled]

    async def list(self, actor: User | None) -> list[SlashCommand]:
        check_admin(actor, "manage slash commands")
        async with self.d.store.read() as tx:
            return await tx.list_commands()

    async def usernames(
        self, actor: User | None, commands: Sequence[SlashCommand]
    ) -> dict[str, str]:
        """Who answers each command, by user id: their usernames (for lists)."""
        check_admin(actor, "manage slash commands")
        async with self.d.store.read() as tx:
            users = await tx.get_users([c.user_id for c in commands])
        return {str(u.id): u.username for u in users}

    async def get(self, actor: User | None, command_id: str) -> SlashCommand:
        check_admin(actor, "manage slash commands")
        async with self.d.store.read() as tx:
            return await _command(tx, command_id)

    async def by_name(self, actor: User | None, name: str) -> SlashCommand:
        check_admin(actor, "manage slash commands")
        async with self.d.store.read() as tx:
            found = await tx.command_by_name(check_command_name(name))
        if found is None:
            raise NotFound(f"no command /{name}")
        return found

    async def update(
        self,
        actor: User | None,
        command_id: str,
        *,
        description: str | None = None,
        usage: str | None = None,
        url: str | None = None,
        disabled: bool | None = None,
    ) -> SlashCommand:
        check_admin(actor, "manage slash commands")
        if description is not None:
            description = clean_text(
                description,
                field="description",
                max_chars=MAX_DESCRIPTION_CHARS,
                allow_empty=True,
            )
        if usage is not None:
            usage = clean_text(usage, field="usage", max_chars=MAX_USAGE_CHARS, allow_empty=True)
        async with self.d.store.write() as tx:
            command = await _command(tx, command_id)
            if url is not None:
                if command.target is not TargetKind.URL:
                    raise InvalidRequest("a bot's command has no url", field="url")
                url = check_target_url(url)
            changes = {
                k: v
                for k, v in (
                    ("description", description),
                    ("usage", usage),
                    ("url", url),
                    ("disabled", disabled),
                )
                if v is not None and v != getattr(command, k)
            }
            if not changes:
                return command
            await tx.update_command(
                command.id, description=description, usage=usage, url=url, disabled=disabled
            )
            await self._audit(tx, actor, AuditAction.COMMAND_UPDATED, command, **changes)
            updated = await _command(tx, command.id)
        return updated

    async def rotate_secret(self, actor: User | None, command_id: str) -> tuple[SlashCommand, str]:
        """A new signing secret (returned once): requests are signed with it from now on."""
        check_admin(actor, "manage slash commands")
        secret = new_token()
        async with self.d.store.write() as tx:
            command = await _command(tx, command_id)
            if command.target is not TargetKind.URL:
                raise InvalidOperation("a bot's command is not signed: it has no secret")
            sealed = SealedSecret(*self.d.keyring.seal_secret(command.id, secret))
            await tx.update_command(command.id, secret=sealed)
            await self._audit(tx, actor, AuditAction.COMMAND_SECRET_ROTATED, command)
        return command, secret

    async def delete(self, actor: User | None, command_id: str) -> None:
        check_admin(actor, "manage slash commands")
        async with self.d.store.write() as tx:
            command = await _command(tx, command_id)
            await tx.delete_command(command.id)
            if command.target is TargetKind.URL:  # its own integration user (never a bot's)
                await tx.set_disabled(command.user_id, True)
            await self._audit(tx, actor, AuditAction.COMMAND_DELETED, command)

    async def _audit(
        self, tx: Tx, actor: User | None, action: str, command: SlashCommand, **details: object
    ) -> None:
        await record(
            tx,
            self.d.clock,
            action,
            actor_id=None if actor is None else actor.id,
            target_id=command.id,
            details={"name": command.name, **{k: v for k, v in details.items() if v is not None}},
        )

    # --- invoking ---------------------------------------------------------------------
    async def invoke(
        self,
        actor: User,
        conversation_id: str,
        name: str,
        text: str = "",
        *,
        base_url: str | None = None,
    ) -> tuple[Invocation, SlashCommand]:
        """`/name text` in a conversation of the caller's: written with its job in one
        transaction; the job calls the target. `base_url`: where the request came to
        (the response URL starts with `public_url`, else with it)."""
        name = check_command_name(name)
        text = check_command_text(text)
        await self.limiter.check(Action.COMMAND, actor.id, None)
        cfg = self.d.integrations
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            await access_conversation(tx, actor, conversation_id)
            command = await tx.command_by_name(name)
            if command is None or command.disabled:
                raise NotFound(f"no command /{name}")
            invocation = Invocation(
                id=self.d.ids.new_id(),
                command_id=command.id,
                conversation_id=ConversationId(conversation_id),
                user_id=actor.id,
                text=text,
                created_at=now,
                expires_at=now + timedelta(seconds=cfg.command_response_ttl_seconds),
                responses_left=cfg.command_response_uses,
            )
            await tx.delete_expired_invocations(now)
            await tx.insert_invocation(invocation)
            base = cfg.public_url or base_url or ""
            await self.jobs.enqueue(
                tx,
                COMMAND_JOB,
                {"invocation_id": invocation.id, "base_url": base},
                job_id=f"command:{invocation.id}",
            )
        return invocation, command

    def response_url(self, base: str, invocation_id: str) -> str:
        signature = self.d.keyring.sign_link(RESPONSE_LINK, invocation_id)
        return f"{base.rstrip('/')}{RESPONSE_PATH}/{invocation_id}/{signature}"

    async def run(self, job: Job) -> None:
        """The job of one invocation: call its target, post what it answers. Redone
        (at least once), it posts no second in-channel message (the reply's
        client_msg_id is the invocation's)."""
        invocation_id = str(job.payload["invocation_id"])
        async with self.d.store.read() as tx:
            invocation = await tx.get_invocation(invocation_id)
            command = None if invocation is None else await tx.get_command(invocation.command_id)
            caller = None if invocation is None else await tx.get_user(invocation.user_id)
            sealed = None if command is None else await tx.command_secret(command.id)
        if invocation is None or command is None or caller is None or command.disabled:
            return  # deleted since: nothing to do
        last_try = job.attempt >= job.max_attempts
        url = self.response_url(str(job.payload.get("base_url") or ""), invocation.id)
        if command.target is TargetKind.BOT:
            await self._to_bot(invocation, command, caller, url, last_try)
            return
        assert command.url is not None and sealed is not None
        body = orjson.dumps(
            {
                "type": "command",
                "command": f"/{command.name}",
                "text": invocation.text,
                "invocation_id": invocation.id,
                "conversation_id": invocation.conversation_id,
                "user_id": caller.id,
                "user_name": caller.username,
                "response_url": url,
                "expires_at": invocation.expires_at.isoformat().replace("+00:00", "Z"),
            }
        )
        secret = self.d.keyring.open_secret(command.id, sealed.key_id, sealed.sealed)
        timestamp = str(int(self.d.clock.now().timestamp()))
        headers = {
            "User-Agent": USER_AGENT,
            "X-Tidings-Timestamp": timestamp,
            "X-Tidings-Signature": signature(secret, timestamp, body),
            "X-Tidings-Event": "command",
            "X-Tidings-Delivery": invocation.id,
        }
        cfg = self.d.integrations
        try:
            answer = await self.outbound.post(
                check_url(command.url, MAX_URL_CHARS),
                headers,
                body,
                read_max=cfg.command_response_max_bytes,
                timeout=cfg.command_timeout_seconds,
            )
        except (Refused, InvalidRequest) as exc:
            log.warning("command_refused", command=command.name, error=str(exc))
            await self._notice(invocation, command, caller, "command_failed")
            raise Permanent(str(exc)) from exc
        except Unreachable as exc:
            log.warning("command_failed", command=command.name, error=str(exc))
            if last_try:
                await self._notice(invocation, command, caller, "command_failed")
            raise
        if answer.status >= 500:
            if last_try:
                await self._notice(invocation, command, caller, "command_failed")
            raise Unreachable(f"the command's URL answered {answer.status}")
        if not 200 <= answer.status < 300:
            await self._notice(invocation, command, caller, "command_failed")
            raise Permanent(f"the command's URL answered {answer.status}")
        reply = self._answer_of(answer.content_type, answer.body)
        if reply is not None:
            await self.deliver(invocation, command, caller, reply, 0)

    @staticmethod
    def _answer_of(content_type: str, body: bytes) -> Reply | None:
        """The target's answer: a JSON reply, or plain text (shown to the caller)."""
        if not body.strip():
            return None
        if "json" in content_type:
            try:
                return reply_of(orjson.loads(body))
            except (orjson.JSONDecodeError, InvalidRequest):
                return None
        text = body.decode("utf-8", "replace").strip()
        return Reply(text, ResponseType.EPHEMERAL) if text else None

    async def _to_bot(
        self, invocation: Invocation, command: SlashCommand, caller: User, url: str, last: bool
    ) -> None:
        state = (await self.d.bus.get_presence([command.user_id]))[command.user_id]
        if state == PresenceState.OFFLINE.value:
            if last:
                await self._notice(invocation, command, caller, "bot_offline")
                return
            raise Unreachable("the command's bot is not connected")
        frame = command_frame(
            invocation.id,
            command.name,
            invocation.text,
            invocation.conversation_id,
            caller,
            url,
            self.d.clock.now(),
        )
        await self.presence.tell(command.user_id, frame, caller.id)

    async def respond(self, invocation_id: str, signature: str, data: object) -> None:
        """A reply through the response URL: while it has not expired, a few times."""
        if not self.d.keyring.link_is_signed(RESPONSE_LINK, invocation_id, signature):
            raise NotFound("response URL not found")
        reply = reply_of(data)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            invocation = await tx.get_invocation(invocation_id)
            if invocation is None or not await tx.use_invocation_response(invocation_id, now):
                raise NotFound("response URL not found, expired or used up")
            command = await tx.get_command(invocation.command_id)
            caller = await tx.get_user(invocation.user_id)
        if command is None or caller is None:
            raise NotFound("response URL not found")
        if reply is not None:
            index = self.d.integrations.command_response_uses - invocation.responses_left + 1
            await self.deliver(invocation, command, caller, reply, index)

    async def deliver(
        self, invocation: Invocation, command: SlashCommand, caller: User, reply: Reply, index: int
    ) -> None:
        """Post a reply in the conversation as the command's user, or show it to the
        caller only. One too long for a message is refused to the caller."""
        try:
            check_body(reply.text, self.d.limits.max_message_bytes)
        except TidingsError:
            await self._notice(invocation, command, caller, "reply_too_long")
            return
        async with self.d.store.read() as tx:
            speaker = await tx.get_user(command.user_id)
            conv = await tx.get_conversation(invocation.conversation_id)
        if speaker is None or conv is None:
            return
        kind = reply.response_type
        if kind is ResponseType.IN_CHANNEL and conv.kind is ConversationKind.DIRECT:
            kind = ResponseType.EPHEMERAL  # nobody joins a direct conversation
        if kind is ResponseType.EPHEMERAL:
            await self._ephemeral(invocation, command, caller, speaker, reply.text)
            return
        async with self.d.store.write() as tx:
            await _join(tx, self.d, speaker, invocation.conversation_id, caller.id)
        await self.messages.send(
            speaker,
            invocation.conversation_id,
            f"cmd:{invocation.id}:{index}",
            reply.text,
        )

    async def _ephemeral(
        self,
        invocation: Invocation,
        command: SlashCommand,
        caller: User,
        speaker: User,
        text: str,
        notice: str | None = None,
    ) -> None:
        frame = ephemeral_frame(
            invocation.conversation_id,
            speaker,
            text,
            self.d.clock.now(),
            command=command.name,
            invocation_id=invocation.id,
            notice=notice,
        )
        await self.presence.tell(caller.id, frame, speaker.id)

    async def _notice(
        self, invocation: Invocation, command: SlashCommand, caller: User, notice: str
    ) -> None:
        """Tell the caller (only) that the command failed; `notice` is a code the web
        client translates, the text is its English."""
        texts = {
            "command_failed": f"/{command.name} failed: its service did not answer",
            "bot_offline": f"/{command.name} failed: its bot is not connected",
            "reply_too_long": f"/{command.name} answered with a reply too long to show",
        }
        async with self.d.store.read() as tx:
            speaker = await tx.get_user(command.user_id)
        await self._ephemeral(
            invocation, command, caller, speaker or caller, texts[notice], notice=notice
        )


async def _command(tx: Tx, command_id: str) -> SlashCommand:
    found = await tx.get_command(command_id)
    if found is None:
        raise NotFound("command not found")
    return found
