"""The security aggregate: session tokens, the second factor and its recovery codes,
login failures, the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from tidings.core.models import (
    AuditEntry,
    Avatar,
    CustomStatus,
    DepartmentId,
    OrgRole,
    Preferences,
    Session,
    SessionInfo,
    Theme,
    TokenId,
    User,
    UserId,
    UserOrigin,
)
from tidings.store.ports import AuditHead, LoginFailures, SecondFactor, TokenSeen
from tidings.store.sql import schema as t
from tidings.store.sql.engines import BatchRunner
from tidings.store.sql.statements import SESSION
from tidings.store.sql.tx import TxBase, utc, utc_or_none


def _statements() -> dict[str, Any]:
    tok = t.tokens
    seen = update(tok).where(tok.c.id == bindparam("b_id")).values(last_seen_at=bindparam("b_seen"))
    return {
        "seen": seen,
        "seen_with_address": seen.values(address=bindparam("b_address")),
    }


_STATEMENTS = _statements()


async def read_session(run: BatchRunner, token_hash: str, now: datetime) -> Session | None:
    """The session of a token (not revoked, not expired), with its user."""
    rows = await run.fetch(SESSION, (token_hash,))
    if not rows:
        return None
    (token_id, device, expires_at, enrol_only, last_seen_at) = rows[0][:5]
    (user_id, username, display_name, role, disabled, created_at, bot, email, origin) = rows[0][
        5:14
    ]
    expires = utc(run.read_timestamp(expires_at))
    if expires <= now:
        return None
    departments = sorted(DepartmentId(r[14]) for r in rows if r[14] is not None)
    (status_text, status_emoji, status_until, language, time_zone, theme) = rows[0][15:21]
    status = None
    if status_text is not None:
        until = None if status_until is None else utc(run.read_timestamp(status_until))
        status = CustomStatus(status_text, status_emoji or "", until)
    (avatar_id, avatar_sha256, avatar_type, avatar_at) = rows[0][21:25]
    avatar = None
    if avatar_id is not None:
        avatar = Avatar(avatar_id, utc(run.read_timestamp(avatar_at)), avatar_sha256, avatar_type)
    user = User(
        id=UserId(user_id),
        username=username,
        display_name=display_name,
        role=OrgRole(role),
        disabled=bool(disabled),
        created_at=utc(run.read_timestamp(created_at)),
        department_ids=tuple(departments),
        bot=bool(bot),
        email=email,
        origin=UserOrigin(origin),
        status=status,
        preferences=Preferences(language=language, time_zone=time_zone, theme=Theme(theme)),
        avatar=avatar,
    )
    return Session(
        token_id=TokenId(token_id),
        user=user,
        device=device,
        expires_at=expires,
        enrol_only=bool(enrol_only),
        last_seen_at=None if last_seen_at is None else utc(run.read_timestamp(last_seen_at)),
    )


def _second_factor(row: Any) -> SecondFactor:
    last = None if row.last_step is None else int(row.last_step)
    return SecondFactor(row.secret, row.enabled_at is not None, last, row.key_id)


def _under(key_id: str | None) -> ColumnElement[bool]:
    c = t.second_factors.c
    return c.key_id.is_(None) if key_id is None else c.key_id == key_id


def _audit(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq),
        at=utc(row.at),
        action=row.action,
        actor_id=row.actor_id,
        target_id=row.target_id,
        address=row.address,
        details=orjson.loads(row.details),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class SecurityQueries(TxBase):
    # --- session tokens ---------------------------------------------------------
    async def insert_token(
        self,
        token_id: str,
        token_hash: str,
        user_id: str,
        device: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        await self.conn.execute(
            insert(t.tokens).values(
                id=token_id,
                token_hash=token_hash,
                user_id=user_id,
                device=device,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    async def session_for_token(self, token_hash: str, now: datetime) -> Session | None:
        return await read_session(self._batch(), token_hash, now)

    async def revoke_token(self, token_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.tokens)
            .where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        # a session's push subscriptions end with it (services/push.py)
        await self.conn.execute(
            delete(t.push_subscriptions).where(t.push_subscriptions.c.token_id == token_id)
        )

    async def revoke_user_tokens(self, user_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.tokens)
            .where(t.tokens.c.user_id == user_id, t.tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await self.conn.execute(
            delete(t.push_subscriptions).where(t.push_subscriptions.c.user_id == user_id)
        )

    async def delete_dead_tokens(self, before: datetime) -> int:
        """Delete tokens expired or revoked before `before`; returns how many."""
        done = await self.conn.execute(
            delete(t.tokens).where(
                or_(t.tokens.c.expires_at < before, t.tokens.c.revoked_at < before)
            )
        )
        return int(done.rowcount)

    async def set_tokens_seen(self, seen: Sequence[TokenSeen]) -> None:
        """When (and from where) each of these sessions was last seen: one statement
        per shape (two: with and without an address)."""
        with_address = [
            {"b_id": n.token_id, "b_seen": n.at, "b_address": n.address[:64]}
            for n in seen
            if n.address is not None
        ]
        without = [{"b_id": n.token_id, "b_seen": n.at} for n in seen if n.address is None]
        if with_address:
            await self.conn.execute(_STATEMENTS["seen_with_address"], with_address)
        if without:
            await self.conn.execute(_STATEMENTS["seen"], without)

    async def list_sessions(self, user_id: str, now: datetime) -> list[SessionInfo]:
        """The user's live sessions (not revoked, not expired), newest first."""
        c = t.tokens.c
        rows = await self.conn.execute(
            select(t.tokens)
            .where(c.user_id == user_id, c.revoked_at.is_(None), c.expires_at > now)
            .order_by(c.created_at.desc(), c.id.desc())
        )
        return [
            SessionInfo(
                token_id=TokenId(r.id),
                device=r.device,
                created_at=utc(r.created_at),
                last_seen_at=None if r.last_seen_at is None else utc(r.last_seen_at),
                address=r.address,
                expires_at=utc(r.expires_at),
            )
            for r in rows
        ]

    async def token_owner(self, token_id: str) -> str | None:
        """The user of a live (not revoked) token."""
        stmt = select(t.tokens.c.user_id).where(
            t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None)
        )
        return (await self.conn.execute(stmt)).scalar()

    async def live_token_ids(self, token_ids: Sequence[str], now: datetime) -> set[str]:
        """Those of `token_ids` that still authenticate: not revoked, not expired, and
        their user not disabled."""
        if not token_ids:
            return set()
        c = t.tokens.c
        rows = await self.conn.execute(
            select(c.id)
            .select_from(t.tokens.join(t.users, t.users.c.id == c.user_id))
            .where(
                c.id.in_(list(token_ids)),
                c.revoked_at.is_(None),
                c.expires_at > now,
                t.users.c.disabled.is_(False),
            )
        )
        return {row.id for row in rows}

    async def revoke_user_tokens_except(self, user_id: str, keep: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.tokens)
            .where(
                t.tokens.c.user_id == user_id,
                t.tokens.c.id != keep,
                t.tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        await self.conn.execute(
            delete(t.push_subscriptions).where(
                t.push_subscriptions.c.user_id == user_id,
                t.push_subscriptions.c.token_id != keep,
            )
        )

    async def set_tokens_enrol_only(self, user_ids: Sequence[str], enrol_only: bool) -> None:
        """Restrict (or free) the live sessions of these users to enrolling a factor."""
        if not user_ids:
            return
        await self.conn.execute(
            update(t.tokens)
            .where(t.tokens.c.user_id.in_(list(user_ids)), t.tokens.c.revoked_at.is_(None))
            .values(enrol_only=enrol_only)
        )

    async def set_token_enrol_only(self, token_id: str, enrol_only: bool) -> None:
        await self.conn.execute(
            update(t.tokens).where(t.tokens.c.id == token_id).values(enrol_only=enrol_only)
        )

    # --- second factor ----------------------------------------------------------
    async def get_second_factor(self, user_id: str) -> SecondFactor | None:
        """A user's TOTP, if any."""
        row = (
            await self.conn.execute(
                select(t.second_factors).where(t.second_factors.c.user_id == user_id)
            )
        ).first()
        return None if row is None else _second_factor(row)

    async def put_second_factor(
        self, user_id: str, secret: str, key_id: str | None, now: datetime
    ) -> None:
        """Start (or restart) an enrolment: a new secret (sealed under `key_id`), not
        enabled yet."""
        await self.delete_second_factor(user_id)
        await self.conn.execute(
            insert(t.second_factors).values(
                user_id=user_id,
                secret=secret,
                key_id=key_id,
                created_at=now,
                enabled_at=None,
                last_step=None,
            )
        )

    async def second_factor_key_ids(self) -> dict[str | None, int]:
        """How many stored TOTP secrets each key id sealed (None: stored as is)."""
        c = t.second_factors.c
        rows = await self.conn.execute(select(c.key_id, func.count()).group_by(c.key_id))
        return {r[0]: int(r[1]) for r in rows}

    async def second_factors_under(
        self, key_id: str | None, after_user_id: str, limit: int
    ) -> list[tuple[str, SecondFactor]]:
        """Up to `limit` (user id, second factor) whose secret is sealed under `key_id`
        (None: stored as is), by user id, after `after_user_id`."""
        c = t.second_factors.c
        rows = await self.conn.execute(
            select(t.second_factors)
            .where(_under(key_id), c.user_id > after_user_id)
            .order_by(c.user_id)
            .limit(limit)
        )
        return [(r.user_id, _second_factor(r)) for r in rows]

    async def reseal_second_factor(
        self, user_id: str, old_key_id: str | None, secret: str, key_id: str
    ) -> bool:
        """Replace a secret sealed under `old_key_id` by the same secret sealed under
        `key_id`; False when it changed meanwhile."""
        c = t.second_factors.c
        done = await self.conn.execute(
            update(t.second_factors)
            .where(c.user_id == user_id, _under(old_key_id))
            .values(secret=secret, key_id=key_id)
        )
        return bool(done.rowcount)

    async def enable_second_factor(self, user_id: str, now: datetime, step: int) -> None:
        await self.conn.execute(
            update(t.second_factors)
            .where(t.second_factors.c.user_id == user_id)
            .values(enabled_at=now, last_step=step)
        )

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record a time step as used; False when it (or a later one) was used already,
        so that one code cannot be replayed."""
        c = t.second_factors.c
        done = await self.conn.execute(
            update(t.second_factors)
            .where(c.user_id == user_id, (c.last_step.is_(None)) | (c.last_step < step))
            .values(last_step=step)
        )
        return bool(done.rowcount)

    async def delete_second_factor(self, user_id: str) -> None:
        await self.conn.execute(
            delete(t.second_factors).where(t.second_factors.c.user_id == user_id)
        )
        await self.conn.execute(
            delete(t.recovery_codes).where(t.recovery_codes.c.user_id == user_id)
        )

    async def second_factor_user_ids(self, user_ids: Sequence[str]) -> set[str]:
        """Which of these users have an enabled second factor."""
        if not user_ids:
            return set()
        rows = await self.conn.execute(
            select(t.second_factors.c.user_id).where(
                t.second_factors.c.user_id.in_(list(user_ids)),
                t.second_factors.c.enabled_at.is_not(None),
            )
        )
        return {r[0] for r in rows}

    async def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str]) -> None:
        await self.conn.execute(
            delete(t.recovery_codes).where(t.recovery_codes.c.user_id == user_id)
        )
        await self.conn.execute(
            insert(t.recovery_codes),
            [{"user_id": user_id, "code_hash": h, "used_at": None} for h in code_hashes],
        )

    async def use_recovery_code(self, user_id: str, code_hash: str, now: datetime) -> bool:
        """Spend one recovery code; False when unknown or already spent."""
        c = t.recovery_codes.c
        done = await self.conn.execute(
            update(t.recovery_codes)
            .where(c.user_id == user_id, c.code_hash == code_hash, c.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(done.rowcount)

    async def unspent_recovery_hashes(self, user_id: str) -> list[str]:
        c = t.recovery_codes.c
        rows = await self.conn.execute(
            select(c.code_hash).where(c.user_id == user_id, c.used_at.is_(None))
        )
        return [r[0] for r in rows]

    async def recovery_codes_left(self, user_id: str) -> int:
        c = t.recovery_codes.c
        rows = await self.conn.execute(
            select(c.code_hash).where(c.user_id == user_id, c.used_at.is_(None))
        )
        return len(rows.all())

    # --- login failures ---------------------------------------------------------
    async def get_login_failures(self, keys: Sequence[str]) -> dict[str, LoginFailures]:
        """The failures counted under each of these keys (absent: none)."""
        rows = await self.conn.execute(
            select(t.login_failures).where(t.login_failures.c.key.in_(list(keys)))
        )
        return {
            r.key: LoginFailures(
                failures=int(r.failures),
                first_at=utc(r.first_at),
                last_at=utc(r.last_at),
                locked_until=utc_or_none(r.locked_until),
            )
            for r in rows
        }

    async def put_login_failure(self, key: str, record: LoginFailures) -> None:
        values = {
            "failures": record.failures,
            "first_at": record.first_at,
            "last_at": record.last_at,
            "locked_until": record.locked_until,
        }
        change = update(t.login_failures).where(t.login_failures.c.key == key).values(**values)
        done = await self.conn.execute(change)
        if done.rowcount:
            return
        try:  # a concurrent failure may insert the same key first (PostgreSQL)
            async with self.conn.begin_nested():
                await self.conn.execute(insert(t.login_failures).values(key=key, **values))
        except IntegrityError:
            await self.conn.execute(change)

    async def clear_login_failures(self, key: str) -> None:
        await self.conn.execute(delete(t.login_failures).where(t.login_failures.c.key == key))

    # --- audit log --------------------------------------------------------------
    async def reserve_audit_seq(self) -> int:
        """Take the next audit seq. The counter row stays locked until commit, so audit
        writers are serialized and each sees its predecessor's hash."""
        stmt = (
            update(t.counters)
            .where(t.counters.c.name == "audit")
            .values(value=t.counters.c.value + 1)
            .returning(t.counters.c.value)
        )
        value = (await self.conn.execute(stmt)).scalar()
        if value is None:
            await self.conn.execute(insert(t.counters).values(name="audit", value=1))
            value = 1
        return int(value)

    async def audit_hash(self, seq: int) -> str | None:
        stmt = select(t.audit_log.c.hash).where(t.audit_log.c.seq == seq)
        return (await self.conn.execute(stmt)).scalar()

    async def insert_audit(self, entry: AuditEntry) -> None:
        await self.conn.execute(
            insert(t.audit_log).values(
                seq=entry.seq,
                at=entry.at,
                action=entry.action,
                actor_id=entry.actor_id,
                target_id=entry.target_id,
                address=entry.address,
                details=orjson.dumps(entry.details, option=orjson.OPT_SORT_KEYS).decode(),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        if self.audit_signer is None:
            raise RuntimeError("this store signs no audit head: give SqlStore an AuditSigner")
        await self.put_audit_head(self.audit_signer(entry.seq, entry.hash))

    async def get_audit_head(self) -> AuditHead | None:
        row = (await self.conn.execute(select(t.audit_head))).first()
        if row is None:
            return None
        return AuditHead(int(row.seq), row.hash, row.key_id, row.mac)

    async def put_audit_head(self, head: AuditHead) -> None:
        """Audit writers are serialized by the audit counter's row (reserve_audit_seq):
        the row is made by the first entry and only updated after."""
        values = {"seq": head.seq, "hash": head.hash, "key_id": head.key_id, "mac": head.mac}
        done = await self.conn.execute(
            update(t.audit_head).where(t.audit_head.c.id == 1).values(**values)
        )
        if not done.rowcount:
            await self.conn.execute(insert(t.audit_head).values(id=1, **values))

    async def list_audit(
        self,
        after_seq: int,
        limit: int,
        since: datetime | None = None,
        *,
        until: datetime | None = None,
        action: str | None = None,
        actor_id: str | None = None,
        target_id: str | None = None,
    ) -> list[AuditEntry]:
        c = t.audit_log.c
        stmt = select(t.audit_log).where(c.seq > after_seq)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        if until is not None:
            stmt = stmt.where(c.at < until)
        if action is not None:
            stmt = stmt.where(c.action == action)
        if actor_id is not None:
            stmt = stmt.where(c.actor_id == actor_id)
        if target_id is not None:
            stmt = stmt.where(c.target_id == target_id)
        rows = await self.conn.execute(stmt.order_by(c.seq).limit(limit))
        return [_audit(r) for r in rows]
