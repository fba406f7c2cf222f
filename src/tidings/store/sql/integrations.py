"""The integrations aggregate: incoming webhooks, slash commands, their invocations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tidings.core.errors import Conflict
from tidings.core.integrations import IncomingWebhook, Invocation, SlashCommand, TargetKind
from tidings.core.models import ConversationId, UserId
from tidings.store.ports import SealedSecret
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc, utc_or_none


def _hook(row: Any) -> IncomingWebhook:
    return IncomingWebhook(
        id=row.id,
        conversation_id=ConversationId(row.conversation_id),
        name=row.name,
        user_id=UserId(row.user_id),
        created_by=None if row.created_by is None else UserId(row.created_by),
        created_at=utc(row.created_at),
        disabled=bool(row.disabled),
        posts=int(row.posts),
        last_post_at=utc_or_none(row.last_post_at),
    )


def _command(row: Any) -> SlashCommand:
    return SlashCommand(
        id=row.id,
        name=row.name,
        description=row.description,
        usage=row.usage,
        target=TargetKind(row.target),
        url=row.url,
        user_id=UserId(row.user_id),
        created_by=None if row.created_by is None else UserId(row.created_by),
        created_at=utc(row.created_at),
        disabled=bool(row.disabled),
    )


def _invocation(row: Any) -> Invocation:
    return Invocation(
        id=row.id,
        command_id=row.command_id,
        conversation_id=ConversationId(row.conversation_id),
        user_id=UserId(row.user_id),
        text=row.text,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        responses_left=int(row.responses_left),
    )


def _changes(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


class IntegrationQueries(TxBase):
    # --- incoming webhooks ------------------------------------------------------------
    async def insert_incoming_webhook(self, hook: IncomingWebhook, secret_hash: str) -> None:
        await self.conn.execute(
            insert(t.incoming_webhooks).values(
                conversation_id=hook.conversation_id,
                id=hook.id,
                name=hook.name,
                user_id=hook.user_id,
                secret_hash=secret_hash,
                created_by=hook.created_by,
                created_at=hook.created_at,
                disabled=hook.disabled,
                posts=0,
            )
        )

    async def get_incoming_webhook(self, hook_id: str) -> IncomingWebhook | None:
        hooks = t.incoming_webhooks
        row = (await self.conn.execute(select(hooks).where(hooks.c.id == hook_id))).first()
        return None if row is None else _hook(row)

    async def incoming_webhook_by_secret(
        self, hook_id: str, secret_hash: str
    ) -> IncomingWebhook | None:
        hooks = t.incoming_webhooks
        found = await self.conn.execute(
            select(hooks).where(hooks.c.id == hook_id, hooks.c.secret_hash == secret_hash)
        )
        row = found.first()
        return None if row is None else _hook(row)

    async def list_incoming_webhooks(self, conversation_id: str | None) -> list[IncomingWebhook]:
        hooks = t.incoming_webhooks
        query = select(hooks).order_by(hooks.c.created_at, hooks.c.id)
        if conversation_id is not None:
            query = query.where(hooks.c.conversation_id == conversation_id)
        return [_hook(r) for r in await self.conn.execute(query)]

    async def count_incoming_webhooks(self, conversation_id: str) -> int:
        hooks = t.incoming_webhooks
        query = select(func.count()).where(hooks.c.conversation_id == conversation_id)
        return int((await self.conn.execute(query)).scalar() or 0)

    async def update_incoming_webhook(
        self,
        hook_id: str,
        *,
        name: str | None = None,
        disabled: bool | None = None,
        secret_hash: str | None = None,
    ) -> None:
        values = _changes(name=name, disabled=disabled, secret_hash=secret_hash)
        if values:
            hooks = t.incoming_webhooks
            await self.conn.execute(update(hooks).where(hooks.c.id == hook_id).values(**values))

    async def count_incoming_post(self, hook_id: str, at: datetime) -> None:
        hooks = t.incoming_webhooks
        await self.conn.execute(
            update(hooks)
            .where(hooks.c.id == hook_id)
            .values(posts=hooks.c.posts + 1, last_post_at=at)
        )

    async def delete_incoming_webhook(self, hook_id: str) -> None:
        hooks = t.incoming_webhooks
        await self.conn.execute(delete(hooks).where(hooks.c.id == hook_id))

    # --- slash commands -----------------------------------------------------------------
    async def insert_command(self, command: SlashCommand, secret: SealedSecret) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.slash_commands).values(
                        id=command.id,
                        name=command.name,
                        description=command.description,
                        usage=command.usage,
                        target=command.target.value,
                        url=command.url,
                        user_id=command.user_id,
                        secret=secret.sealed,
                        key_id=secret.key_id,
                        created_by=command.created_by,
                        created_at=command.created_at,
                        disabled=command.disabled,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"command /{command.name} exists", field="name") from exc

    async def get_command(self, command_id: str) -> SlashCommand | None:
        cmds = t.slash_commands
        row = (await self.conn.execute(select(cmds).where(cmds.c.id == command_id))).first()
        return None if row is None else _command(row)

    async def command_by_name(self, name: str) -> SlashCommand | None:
        cmds = t.slash_commands
        row = (await self.conn.execute(select(cmds).where(cmds.c.name == name))).first()
        return None if row is None else _command(row)

    async def list_commands(self) -> list[SlashCommand]:
        cmds = t.slash_commands
        return [_command(r) for r in await self.conn.execute(select(cmds).order_by(cmds.c.name))]

    async def command_secret(self, command_id: str) -> SealedSecret | None:
        cmds = t.slash_commands
        found = await self.conn.execute(
            select(cmds.c.key_id, cmds.c.secret).where(cmds.c.id == command_id)
        )
        row = found.first()
        return None if row is None else SealedSecret(row.key_id, row.secret)

    async def update_command(
        self,
        command_id: str,
        *,
        description: str | None = None,
        usage: str | None = None,
        url: str | None = None,
        disabled: bool | None = None,
        secret: SealedSecret | None = None,
    ) -> None:
        values = _changes(description=description, usage=usage, url=url, disabled=disabled)
        if secret is not None:
            values.update(secret=secret.sealed, key_id=secret.key_id)
        if values:
            cmds = t.slash_commands
            await self.conn.execute(update(cmds).where(cmds.c.id == command_id).values(**values))

    async def delete_command(self, command_id: str) -> None:
        cmds = t.slash_commands
        await self.conn.execute(delete(cmds).where(cmds.c.id == command_id))

    async def command_key_ids(self) -> dict[str, int]:
        cmds = t.slash_commands
        query = select(cmds.c.key_id, func.count()).where(cmds.c.key_id != "")
        return {r[0]: int(r[1]) for r in await self.conn.execute(query.group_by(cmds.c.key_id))}

    async def command_secrets_under(self, key_id: str) -> list[tuple[str, SealedSecret]]:
        cmds = t.slash_commands
        query = select(cmds.c.id, cmds.c.key_id, cmds.c.secret).where(cmds.c.key_id == key_id)
        rows = await self.conn.execute(query.order_by(cmds.c.id))
        return [(r.id, SealedSecret(r.key_id, r.secret)) for r in rows]

    # --- invocations ------------------------------------------------------------------
    async def insert_invocation(self, invocation: Invocation) -> None:
        await self.conn.execute(
            insert(t.command_invocations).values(
                conversation_id=invocation.conversation_id,
                id=invocation.id,
                command_id=invocation.command_id,
                user_id=invocation.user_id,
                text=invocation.text,
                created_at=invocation.created_at,
                expires_at=invocation.expires_at,
                responses_left=invocation.responses_left,
            )
        )

    async def get_invocation(self, invocation_id: str) -> Invocation | None:
        inv = t.command_invocations
        row = (await self.conn.execute(select(inv).where(inv.c.id == invocation_id))).first()
        return None if row is None else _invocation(row)

    async def use_invocation_response(self, invocation_id: str, now: datetime) -> bool:
        inv = t.command_invocations
        done = await self.conn.execute(
            update(inv)
            .where(inv.c.id == invocation_id, inv.c.responses_left > 0, inv.c.expires_at > now)
            .values(responses_left=inv.c.responses_left - 1)
        )
        return bool(done.rowcount)

    async def delete_expired_invocations(self, before: datetime) -> int:
        inv = t.command_invocations
        done = await self.conn.execute(delete(inv).where(inv.c.expires_at < before))
        return int(done.rowcount or 0)
