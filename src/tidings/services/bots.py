"""Bot accounts: an admin creates one and gets its token, lists them, rotates a token.

A bot is a user with `bot` set. It has no password (login refuses it); it authenticates
with a bot token: a row of the tokens table like a device session (device "bot"), stored
only as its hash, that never expires. A bot has at most one live token: rotating revokes
the old one and cuts the connections made with it; disabling the bot revokes it too
(services/users.py), so an enabled-again bot needs a new token.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tidings.core.audit import AuditAction
from tidings.core.clock import new_token
from tidings.core.errors import InvalidOperation, NotFound
from tidings.core.models import BotInfo, OrgRole, User, UserId
from tidings.core.rules import (
    check_admin,
    check_can_manage_user,
    clean_text,
    normalize_username,
    search_key,
)
from tidings.services.audit import record
from tidings.services.auth import AuthService, token_hash
from tidings.services.context import Deps
from tidings.services.events import close_connections_on_commit
from tidings.services.users import UserService
from tidings.store.ports import Tx

BOT_DEVICE = "bot"
# A bot token does not expire: rotate it (or disable the bot) to end it.
NEVER_EXPIRES = datetime(9999, 1, 1, tzinfo=UTC)
# Not an argon2 hash: no password ever matches it (and login refuses bots before trying).
NO_PASSWORD = "!bot"


class BotService:
    def __init__(self, deps: Deps, auth: AuthService, users: UserService) -> None:
        self.d = deps
        self.auth = auth
        self.users = users

    async def create(
        self, actor: User | None, username: str, display_name: str | None = None
    ) -> tuple[User, str]:
        """Create a bot account and its first token. The token is returned once, here:
        only its hash is kept. `actor` None is the operator at the command line."""
        check_admin(actor, "manage bots")
        name = normalize_username(username)
        shown = clean_text(display_name or name, field="display_name", max_chars=80)
        now = self.d.clock.now()
        user = User(
            id=UserId(self.d.ids.new_id()),
            username=name,
            display_name=shown,
            role=OrgRole.MEMBER,
            disabled=False,
            created_at=now,
            bot=True,
        )
        if actor is not None:
            check_can_manage_user(actor, user, user.role)
        token = new_token()
        async with self.d.store.write() as tx:
            await tx.insert_user(user, NO_PASSWORD, search_key(name, shown))
            token_id = await self._issue(tx, user, token, now)
            await record(
                tx,
                self.d.clock,
                AuditAction.BOT_CREATED,
                actor_id=None if actor is None else actor.id,
                target_id=user.id,
                details={"username": name, "token_id": token_id},
            )
        return user, token

    async def list(self, actor: User | None) -> list[BotInfo]:
        """Every bot account with its live token (None when it has none), by username."""
        check_admin(actor, "manage bots")
        await self.auth.last_seen.flush()
        now = self.d.clock.now()
        async with self.d.store.read() as tx:
            ids = await tx.bot_user_ids()
            users = {u.id: u for u in await tx.get_users(ids)}
            found = []
            for user_id in ids:
                sessions = await tx.list_sessions(user_id, now)
                found.append(BotInfo(users[UserId(user_id)], sessions[0] if sessions else None))
        return found

    async def rotate_token(self, actor: User | None, user_id: str) -> tuple[User, str]:
        """Issue a new token for a bot: the old one stops working at once and the
        connections made with it close. Returned once, like at creation."""
        check_admin(actor, "manage bots")
        token = new_token()
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            bot = await self._bot(tx, actor, user_id)
            if bot.disabled:
                raise InvalidOperation(
                    f"bot {bot.username} is disabled: enable it first", user_id=bot.id
                )
            await tx.revoke_user_tokens(bot.id, now)
            token_id = await self._issue(tx, bot, token, now)
            await record(
                tx,
                self.d.clock,
                AuditAction.BOT_TOKEN_ROTATED,
                actor_id=None if actor is None else actor.id,
                target_id=bot.id,
                details={"token_id": token_id},
            )
            close_connections_on_commit(tx, self.d.bus, bot.id, "token_rotated")
        return bot, token

    async def disable(self, actor: User | None, user_id: str) -> User:
        """Disable a bot: its token is revoked and its connections close."""
        check_admin(actor, "manage bots")
        async with self.d.store.read() as tx:
            bot = await self._bot(tx, actor, user_id)
        return await self.users.update(actor, bot.id, disabled=True)

    async def by_username(self, username: str) -> User:
        """A bot by its username (the command line names bots)."""
        try:
            user = await self.users.by_username(username)
        except NotFound:
            user = None
        if user is None or not user.bot:
            raise NotFound(f"no bot named {username!r}", username=username)
        return user

    async def _bot(self, tx: Tx, actor: User | None, user_id: str) -> User:
        bot = await tx.get_user(user_id)
        if bot is None or not bot.bot:
            raise NotFound("bot not found", user_id=user_id)
        if actor is not None:
            check_can_manage_user(actor, bot, None)
        return bot

    async def _issue(self, tx: Tx, bot: User, token: str, now: datetime) -> str:
        token_id = self.d.ids.new_id()
        await tx.insert_token(token_id, token_hash(token), bot.id, BOT_DEVICE, now, NEVER_EXPIRES)
        return token_id
