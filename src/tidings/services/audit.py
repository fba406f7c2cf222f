"""The audit log: an append-only, hash-chained record of security-relevant actions,
whose newest entry is kept signed (the store moves the signed head with every entry:
store/ports.py:AuditHead), so that removing the newest entries shows.

Services call `record(tx, ...)` inside the transaction of the action itself, so that an
action and its audit entry commit together or not at all. The client's address comes from
`client_address`, a context variable the transports set for each request or connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import datetime

import orjson

from tidings.core.audit import GENESIS, ChainCheck, ChainVerifier, chain_hash, check_head
from tidings.core.clock import Clock
from tidings.core.models import AuditEntry, User
from tidings.core.rules import check_admin
from tidings.services.context import Deps
from tidings.services.keyring import UnknownKey
from tidings.store.ports import AuditHead, Tx

client_address: ContextVar[str] = ContextVar("client_address", default="")
PAGE_MAX = 500


def _json_ready(details: dict[str, object]) -> dict[str, object]:
    """Only JSON values, so that the hash is the same before and after storage."""
    loaded: dict[str, object] = orjson.loads(orjson.dumps(details, default=str))
    return loaded


async def record(
    tx: Tx,
    clock: Clock,
    action: str,
    *,
    actor_id: str | None,
    target_id: str | None = None,
    address: str | None = None,
    details: dict[str, object] | None = None,
) -> AuditEntry:
    """Append one entry in `tx`. Never give it a secret: entries are exported as is."""
    seq = await tx.reserve_audit_seq()
    prev = GENESIS if seq == 1 else (await tx.audit_hash(seq - 1) or GENESIS)
    at = clock.now()
    where = (client_address.get() if address is None else address)[:64]
    clean = _json_ready(details or {})
    digest = chain_hash(prev, seq, at, action, actor_id, target_id, where, clean)
    entry = AuditEntry(seq, at, action, actor_id, target_id, where, clean, prev, digest)
    await tx.insert_audit(entry)
    return entry


@dataclasses.dataclass(frozen=True, slots=True)
class AuditFilters:
    """What an audit page or export keeps: every field that is set must match."""

    action: str | None = None
    actor_id: str | None = None
    target_id: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


class AuditService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def record(
        self,
        action: str,
        *,
        actor_id: str | None,
        target_id: str | None = None,
        details: dict[str, object] | None = None,
    ) -> AuditEntry:
        """Record in a transaction of its own (for actions that write nothing else)."""
        async with self.d.store.write() as tx:
            return await record(
                tx, self.d.clock, action, actor_id=actor_id, target_id=target_id, details=details
            )

    async def page(
        self,
        actor: User,
        after_seq: int = 0,
        limit: int = 100,
        *,
        filters: AuditFilters | None = None,
    ) -> list[AuditEntry]:
        """Entries after `after_seq`, oldest first, that pass `filters`: admins only."""
        check_admin(actor, "read the audit log")
        f = filters or AuditFilters()
        async with self.d.store.read() as tx:
            return await tx.list_audit(
                max(0, after_seq),
                max(1, min(limit, PAGE_MAX)),
                f.since,
                until=f.until,
                action=f.action,
                actor_id=f.actor_id,
                target_id=f.target_id,
            )

    async def export(
        self, actor: User | None, filters: AuditFilters, max_rows: int
    ) -> tuple[list[AuditEntry], bool]:
        """Admins only: the entries that pass `filters`, oldest first, at most `max_rows`
        (the setting audit_export_max_rows); and whether more were left out (narrow
        the time range, or export the next part from a later `since`)."""
        check_admin(actor, "export the audit log")
        found: list[AuditEntry] = []
        after = 0
        while len(found) <= max_rows:
            want = min(PAGE_MAX, max_rows + 1 - len(found))
            async with self.d.store.read() as tx:
                batch = await tx.list_audit(
                    after,
                    want,
                    filters.since,
                    until=filters.until,
                    action=filters.action,
                    actor_id=filters.actor_id,
                    target_id=filters.target_id,
                )
            found.extend(batch)
            if len(batch) < want:
                break
            after = batch[-1].seq
        return found[:max_rows], len(found) > max_rows

    async def entries(
        self, since: datetime | None = None, page: int = PAGE_MAX
    ) -> AsyncIterator[AuditEntry]:
        """Every entry (at or after `since`), oldest first, in pages (CLI export)."""
        after = 0
        while True:
            async with self.d.store.read() as tx:
                batch = await tx.list_audit(after, page, since)
            for entry in batch:
                yield entry
            if len(batch) < page:
                return
            after = batch[-1].seq

    async def verify(self, head: bool = True) -> ChainCheck:
        """Walk the whole chain from the first entry, and compare its end with the signed
        head (read first: entries appended meanwhile come after it). `head` False: the
        chain alone (for adopting the head of a lost key)."""
        return await self._verify(await self._head() if head else None, head)

    async def _head(self) -> AuditHead | None:
        async with self.d.store.read() as tx:
            return await tx.get_audit_head()

    async def _verify(self, head: AuditHead | None, with_head: bool) -> ChainCheck:
        signed: tuple[int, str] | None = None
        if head is not None:
            try:
                valid = self.d.keyring.head_is_signed(head)
            except UnknownKey as exc:
                return ChainCheck(False, 0, 0, GENESIS, head.seq, str(exc))
            if not valid:
                return ChainCheck(
                    False,
                    0,
                    0,
                    GENESIS,
                    head.seq,
                    "the signed head was altered: its signature does not match",
                )
            signed = (head.seq, head.hash)
        verifier = ChainVerifier(watch=None if head is None else head.seq)
        after = 0
        while verifier.broken is None:
            async with self.d.store.read() as tx:
                batch = await tx.list_audit(after, PAGE_MAX)
            verifier.feed(batch)
            if len(batch) < PAGE_MAX:
                break
            after = batch[-1].seq
        if not with_head:
            return verifier.result()
        checked = check_head(verifier.result(), signed, verifier.watched)
        if checked.ok and head is not None:
            return dataclasses.replace(checked, signed_by=head.key_id)
        return checked
