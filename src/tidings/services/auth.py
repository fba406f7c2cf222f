"""Passwords, tokens, login and logout."""

from __future__ import annotations

import asyncio
import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tidings.bus.ports import Envelope, EnvelopeKind, user_topic
from tidings.core.clock import new_token
from tidings.core.errors import InvalidCredentials, Unauthenticated, UserDisabled
from tidings.core.models import Session, User
from tidings.core.rules import clean_text
from tidings.services.context import Deps

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
_DUMMY_HASH = _hasher.hash("not a real password, used to equalize timing")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def token_hash(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash suffices to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def login(self, username: str, password: str, device: str = "") -> tuple[str, Session]:
        """Check the password and open a session for one device. Unknown users and
        wrong passwords give the same error, after the same work."""
        async with self.d.store.read() as tx:
            found = await tx.get_credentials(username.strip().lower())
        if found is None:
            await verify_password(_DUMMY_HASH, password)
            raise InvalidCredentials("wrong username or password")
        user, stored_hash = found
        if not await verify_password(stored_hash, password):
            raise InvalidCredentials("wrong username or password")
        if user.disabled:
            raise UserDisabled("this account is disabled")
        token = new_token()
        now = self.d.clock.now()
        expires = now + self.d.limits.token_ttl
        token_id = self.d.ids.new_id()
        device_name = clean_text(device or "unknown", field="device", max_chars=120)
        async with self.d.store.write() as wtx:
            await wtx.insert_token(token_id, token_hash(token), user.id, device_name, now, expires)
        async with self.d.store.read() as tx:
            session = await tx.session_for_token(token_hash(token), now)
        assert session is not None
        return token, session

    async def authenticate(self, token: str) -> Session:
        """The session of a bearer token: unknown, revoked, expired tokens and disabled
        users are all refused."""
        if not token:
            raise Unauthenticated("missing token")
        async with self.d.store.read() as tx:
            session = await tx.session_for_token(token_hash(token), self.d.clock.now())
        if session is None:
            raise Unauthenticated("invalid or expired token")
        if session.user.disabled:
            raise Unauthenticated("this account is disabled")
        return session

    async def logout(self, session: Session) -> None:
        async with self.d.store.write() as tx:
            await tx.revoke_token(session.token_id, self.d.clock.now())
        await self.d.bus.publish(
            user_topic(session.user.id),
            Envelope(
                kind=EnvelopeKind.CLOSE,
                user_id=session.user.id,
                token_id=session.token_id,
                reason="logged_out",
            ),
        )

    async def revoke_all(self, user: User, reason: str) -> None:
        """Revoke every token of a user and cut their live connections."""
        async with self.d.store.write() as tx:
            await tx.revoke_user_tokens(user.id, self.d.clock.now())
        await self.cut_connections(user, reason)

    async def cut_connections(self, user: User, reason: str) -> None:
        await self.d.bus.publish(
            user_topic(user.id),
            Envelope(kind=EnvelopeKind.CLOSE, user_id=user.id, reason=reason),
        )
