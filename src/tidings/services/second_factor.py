"""The second factor: TOTP (RFC 6238) enrolment, verification, recovery codes, and the
organization's policy of who must have one.

Enrolment is two steps: `setup` makes a secret (shown once, as an otpauth:// URI and a
QR code PNG), `enable` checks a first code from the authenticator and hands out ten
one-time recovery codes, stored only as argon2id hashes (services/passwords.py:
hash_codes; older SHA-256 ones still work, each once). A code is accepted once: its time
step is remembered, so an intercepted code cannot be replayed. The secret is stored
sealed with the server key (services/keyring.py), opened only to check a code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno

from tidings.core.audit import AuditAction
from tidings.core.errors import (
    Conflict,
    Forbidden,
    InvalidOperation,
    InvalidTotp,
    NotFound,
)
from tidings.core.models import OrgRole, SecondFactorPolicy, Session, User
from tidings.core.rules import check_admin, check_can_manage_user
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.events import close_connections_on_commit
from tidings.services.passwords import Passwords
from tidings.services.reauth import DirectorySignIn, Reauth
from tidings.store.ports import SecondFactor, Tx

POLICY_KEY = "second_factor_policy"
RECOVERY_CODES = 10
STEP_SECONDS = 30
VALID_WINDOW = 1  # accept the previous and the next 30 s step too (clock drift)
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_RECOVERY_SET = frozenset(_RECOVERY_ALPHABET)
RECOVERY_CODE_CHARS = 10
POLICY_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_png: bytes


def normalized_recovery_code(code: str) -> str | None:
    """A recovery code as hashed (`abcde-fghjk` -> `abcdefghjk`), or None when `code`
    cannot be one (then nothing is hashed: a mistyped TOTP code costs no argon2id)."""
    normalized = code.strip().lower().replace("-", "").replace(" ", "")
    if len(normalized) != RECOVERY_CODE_CHARS or set(normalized) - _RECOVERY_SET:
        return None
    return normalized


def legacy_recovery_hash(user_id: str, normalized: str) -> str:
    """How recovery codes were stored before migration 0006 (SHA-256: too fast for a
    50-bit code); such codes still work, each once, until they are replaced."""
    return hashlib.sha256(f"{user_id}:{normalized}".encode()).hexdigest()


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_CHARS))
    return f"{raw[:5]}-{raw[5:]}"


def looks_like_totp(code: str) -> bool:
    digits = code.strip().replace(" ", "")
    return len(digits) == 6 and digits.isdigit()


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code is `code` (within the drift window), or None."""
    if not looks_like_totp(code):
        return None
    digits = code.strip().replace(" ", "")
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), digits):
            found = step
    return found


class SecondFactorService:
    def __init__(
        self, deps: Deps, passwords: Passwords, directory: DirectorySignIn | None = None
    ) -> None:
        self.d = deps
        self.passwords = passwords
        # password and codes: under the login guard (a directory account: its password there)
        self.reauth = Reauth(deps, passwords, directory)
        self._policy: tuple[float, SecondFactorPolicy] | None = None

    # --- policy -------------------------------------------------------------------
    async def policy(self) -> SecondFactorPolicy:
        """The organization's policy, cached for a few seconds (read at every login)."""
        if self._policy is not None and time.monotonic() - self._policy[0] < POLICY_CACHE_SECONDS:
            return self._policy[1]
        async with self.d.store.read() as tx:
            raw = await tx.get_meta(POLICY_KEY)
        value = SecondFactorPolicy(raw) if raw else SecondFactorPolicy.NONE
        self._policy = (time.monotonic(), value)
        return value

    async def set_policy(self, actor: User | None, policy: SecondFactorPolicy) -> None:
        """Admins (or the operator at the command line) choose who needs a second factor.
        Live sessions of people it now concerns who have none are restricted to enrolling
        one; sessions it no longer concerns are freed."""
        check_admin(actor, "change organization settings")
        async with self.d.store.write() as tx:
            raw = await tx.get_meta(POLICY_KEY)
            old = SecondFactorPolicy(raw) if raw else SecondFactorPolicy.NONE
            await tx.set_meta(POLICY_KEY, policy.value)
            everyone = await tx.active_user_ids_with_roles(list(OrgRole))
            enrolled = await tx.second_factor_user_ids(everyone)
            admins = set(await tx.active_user_ids_with_roles([OrgRole.OWNER, OrgRole.ADMIN]))
            concerned = {
                u
                for u in everyone
                if policy is SecondFactorPolicy.EVERYONE
                or (policy is SecondFactorPolicy.ADMINS and u in admins)
            }
            await tx.set_tokens_enrol_only(sorted(concerned - enrolled), True)
            await tx.set_tokens_enrol_only(sorted(set(everyone) - concerned), False)
            await record(
                tx,
                self.d.clock,
                AuditAction.SETTINGS_CHANGED,
                actor_id=None if actor is None else actor.id,
                details={"setting": POLICY_KEY, "old": old.value, "new": policy.value},
            )
        self._policy = (time.monotonic(), policy)

    async def update_settings(
        self, actor: User | None, policy: SecondFactorPolicy | None
    ) -> SecondFactorPolicy:
        """PATCH /settings: admins only, even when nothing changes."""
        check_admin(actor, "change organization settings")
        if policy is not None:
            await self.set_policy(actor, policy)
        return await self.policy()

    async def required_for(self, user: User) -> bool:
        """Bots never: they have no password and no second factor, only their token."""
        return not user.bot and (await self.policy()).applies_to(user.role)

    # --- login --------------------------------------------------------------------
    async def recovery_match(self, user: User, code: str | None) -> str | None:
        """The stored hash of the user's unspent recovery code `code`, or None. Found
        before the transaction that spends it (`verify`): argon2id is slow, and the
        writer must not wait on it."""
        normalized = None if code is None else normalized_recovery_code(code)
        if normalized is None:
            return None
        async with self.d.store.read() as tx:
            stored = await tx.unspent_recovery_hashes(user.id)
        legacy = legacy_recovery_hash(user.id, normalized)
        if legacy in stored:
            return legacy
        return await self.passwords.matching_code(normalized, stored)

    async def _hash_codes(self, codes: list[str]) -> list[str]:
        normalized = [normalized_recovery_code(c) or c for c in codes]
        return await self.passwords.hash_codes(normalized)

    def _secret(self, user_id: str, found: SecondFactor) -> str:
        return self.d.keyring.open_totp(user_id, found.key_id, found.secret)

    async def verify(
        self, tx: Tx, user: User, code: str, now: datetime, recovery: str | None = None
    ) -> str | None:
        """Check a login's second factor in the login's transaction: a TOTP code (each
        accepted once) or an unspent recovery code (`recovery`: its stored hash, from
        `recovery_match`). Returns "totp" or "recovery_code", or None when it is wrong."""
        found = await tx.get_second_factor(user.id)
        if found is None or not found.enabled:
            return None
        step = matching_step(self._secret(user.id, found), code, now)
        if step is not None:
            return "totp" if await tx.use_totp_step(user.id, step) else None
        if recovery is not None and await tx.use_recovery_code(user.id, recovery, now):
            left = await tx.recovery_codes_left(user.id)
            await record(
                tx,
                self.d.clock,
                AuditAction.RECOVERY_CODE_USED,
                actor_id=user.id,
                target_id=user.id,
                details={"codes_left": left},
            )
            return "recovery_code"
        return None

    async def enabled(self, tx: Tx, user_id: str) -> bool:
        found = await tx.get_second_factor(user_id)
        return found is not None and found.enabled

    # --- enrolment ------------------------------------------------------------------
    async def status(self, session: Session) -> tuple[bool, int]:
        """(enabled, unspent recovery codes)."""
        async with self.d.store.read() as tx:
            on = await self.enabled(tx, session.user.id)
            left = await tx.recovery_codes_left(session.user.id) if on else 0
        return on, left

    async def setup(self, session: Session, password: str) -> Enrolment:
        user = session.user
        if user.bot:
            raise InvalidOperation("a bot account has no second factor")
        await self.reauth.password(user, password, "totp_setup")
        secret = pyotp.random_base32()
        key_id, sealed = self.d.keyring.seal_totp(user.id, secret)
        async with self.d.store.write() as tx:
            if await self.enabled(tx, user.id):
                raise Conflict("a second factor is already enabled: disable it first")
            await tx.put_second_factor(user.id, sealed, key_id, self.d.clock.now())
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=user.username, issuer_name=self.d.security.totp_issuer
        )
        png = await asyncio.to_thread(_qr_png, uri)
        return Enrolment(secret, uri, png)

    async def enable(self, session: Session, password: str, code: str) -> list[str]:
        """Confirm an enrolment with the password and a first code; returns the ten
        recovery codes."""
        user = session.user
        await self.reauth.password(user, password, "totp_enable")
        now = self.d.clock.now()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        hashes = await self._hash_codes(codes)
        async with self._counting_wrong_codes(user, "totp_enable"), self.d.store.write() as tx:
            found = await tx.get_second_factor(user.id)
            if found is None:
                raise InvalidOperation("start with POST /auth/totp/setup")
            if found.enabled:
                raise Conflict("the second factor is already enabled")
            step = matching_step(self._secret(user.id, found), code, now)
            if step is None:
                raise InvalidTotp("that code is not right: check the authenticator's clock")
            await tx.enable_second_factor(user.id, now, step)
            await tx.replace_recovery_codes(user.id, hashes)
            await tx.set_tokens_enrol_only([user.id], False)
            await record(
                tx, self.d.clock, AuditAction.TOTP_ENABLED, actor_id=user.id, target_id=user.id
            )
        return codes

    async def regenerate_codes(self, session: Session, password: str, code: str) -> list[str]:
        """New recovery codes: the password and a current TOTP code are both needed."""
        user = session.user
        await self.reauth.password(user, password, "recovery_codes_regenerate")
        now = self.d.clock.now()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        hashes = await self._hash_codes(codes)
        async with (
            self._counting_wrong_codes(user, "recovery_codes_regenerate"),
            self.d.store.write() as tx,
        ):
            if not await self.enabled(tx, user.id):
                raise InvalidOperation("no second factor is enabled")
            if await self._check_totp_only(tx, user, code, now) is None:
                raise InvalidTotp("that code is not right")
            await tx.replace_recovery_codes(user.id, hashes)
            await record(
                tx,
                self.d.clock,
                AuditAction.RECOVERY_CODES_REGENERATED,
                actor_id=user.id,
                target_id=user.id,
            )
        return codes

    async def disable(self, session: Session, password: str, code: str) -> None:
        """Turn the second factor off: the password and a current code (or a recovery
        code) are both needed, and the policy must allow it."""
        user = session.user
        if await self.required_for(user):
            raise Forbidden("your organization requires a second factor")
        await self.reauth.password(user, password, "totp_disable")
        now = self.d.clock.now()
        recovery = await self.recovery_match(user, code)
        async with self._counting_wrong_codes(user, "totp_disable"), self.d.store.write() as tx:
            if not await self.enabled(tx, user.id):
                raise InvalidOperation("no second factor is enabled")
            if await self.verify(tx, user, code, now, recovery) is None:
                raise InvalidTotp("that code is not right")
            await tx.delete_second_factor(user.id)
            await record(
                tx, self.d.clock, AuditAction.TOTP_DISABLED, actor_id=user.id, target_id=user.id
            )

    async def reset(self, actor: User | None, user_id: str) -> None:
        """An admin removes someone's second factor (a lost phone): every session of
        theirs ends; if the policy concerns them they enrol again at their next login."""
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            target = await tx.get_user(user_id)
            if target is None:
                raise NotFound("user not found", user_id=user_id)
            if actor is not None:
                check_can_manage_user(actor, target, None)
            await tx.delete_second_factor(user_id)
            await tx.revoke_user_tokens(user_id, now)
            await record(
                tx,
                self.d.clock,
                AuditAction.TOTP_RESET,
                actor_id=None if actor is None else actor.id,
                target_id=user_id,
            )
            close_connections_on_commit(tx, self.d.bus, user_id, "second_factor_reset")

    @contextlib.asynccontextmanager
    async def _counting_wrong_codes(self, user: User, operation: str) -> AsyncIterator[None]:
        """Around a write transaction that checks a code: when it raises InvalidTotp (and
        so rolls back), the failure is counted by the login guard and audited."""
        try:
            yield
        except InvalidTotp:
            await self.reauth.failed(user, operation, "totp")
            raise

    async def _check_totp_only(self, tx: Tx, user: User, code: str, now: datetime) -> int | None:
        found = await tx.get_second_factor(user.id)
        if found is None:
            return None
        step = matching_step(self._secret(user.id, found), code, now)
        if step is None or not await tx.use_totp_step(user.id, step):
            return None
        return step


def _qr_png(uri: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=5, border=4)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
