"""What the two SQL index adapters share: the `search_docs` table (migration 0016), the
visibility and filter conditions, the newest-first keyset and the counts. Each adapter
(fts5.py, postgres.py) adds how tokens match, how documents are written and how matches
are scored."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    Text,
    and_,
    false,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tidings.search.ports import MAX_TOKEN_CHARS, After, Hit, IndexQuery, SearchDoc
from tidings.store.ports import Tx


def docs_table(*extra: Column[Any]) -> Table:
    """`search_docs`, with the engine's own extra columns (SQLite: doc_id)."""
    return Table(
        "search_docs",
        MetaData(),
        *extra,
        *_columns(),
    )


def _columns() -> list[Column[Any]]:
    return [
        Column("conversation_id", String(32), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("message_id", String(32), nullable=False),
        Column("sender_id", String(32), nullable=False),
        Column("created_at_us", BigInteger, nullable=False),
        Column("tokens", Text, nullable=False),
        Column("has_file", Boolean, nullable=False),
        Column("has_link", Boolean, nullable=False),
        Column("mentions", Text, nullable=False),
        Column("thread_root_seq", BigInteger, nullable=True),
    ]


IN_CHUNK = 500


def connection(tx: Tx) -> AsyncConnection:
    """The SQL connection of a Store transaction (store/sql/tx.py: TxBase.conn): the
    index lives in the store's database and writes in its transactions."""
    return cast(AsyncConnection, cast(Any, tx).conn)


def cut(token: str) -> str:
    return token[:MAX_TOKEN_CHARS]


def tokens_text(tokens: Sequence[str]) -> str:
    """Distinct tokens, space-separated (text.index_tokens makes none with a space;
    the few longer than MAX_TOKEN_CHARS are cut)."""
    if any(len(t) > MAX_TOKEN_CHARS or not t or " " in t for t in tokens):
        tokens = [cut(t) for t in tokens if t and " " not in t]
    return " ".join(dict.fromkeys(tokens))


def mentions_text(user_ids: Sequence[str]) -> str:
    return f" {' '.join(user_ids)} " if user_ids else ""


def row_values(doc: SearchDoc) -> dict[str, object]:
    return {
        "conversation_id": doc.conversation_id,
        "seq": doc.seq,
        "message_id": doc.message_id,
        "sender_id": doc.sender_id,
        "created_at_us": doc.created_at_us,
        "tokens": tokens_text(doc.tokens),
        "has_file": doc.has_file,
        "has_link": doc.has_link,
        "mentions": mentions_text(doc.mentions),
        "thread_root_seq": doc.thread_root_seq,
    }


@functools.lru_cache(maxsize=512)
def _keys_text(count: int) -> Any:
    return text(
        " OR ".join(
            f"(search_docs.conversation_id = :k_c{i} AND search_docs.seq = :k_s{i})"
            for i in range(count)
        )
    )


def keys_clause(keys: Sequence[tuple[str, int]]) -> tuple[Any, dict[str, object]]:
    """`(conversation_id, seq)` of search_docs is one of `keys`: an OR of equalities, which
    both engines answer by index probes (SQLite scans for a row-value IN list); the
    clause is made once per size."""
    params: dict[str, object] = {}
    for i, (cid, seq) in enumerate(keys):
        params[f"k_c{i}"] = cid
        params[f"k_s{i}"] = int(seq)
    return _keys_text(len(keys)), params


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scope_condition(D: Any, query: IndexQuery) -> ColumnElement[bool]:
    """In one of the caller's conversations, within its seq limit: the unlimited ones in
    one IN list, each limited one with its own bound."""
    unlimited = [s.conversation_id for s in query.scopes if not s.bounded]
    parts: list[ColumnElement[bool]] = []
    if unlimited:
        parts.append(D.conversation_id.in_(unlimited))
    for s in query.scopes:
        if not s.bounded:
            continue
        bounds = [D.conversation_id == s.conversation_id]
        if s.max_seq is not None:
            bounds.append(D.seq <= s.max_seq)
        if s.min_seq > 1:
            bounds.append(D.seq >= s.min_seq)
        parts.append(and_(*bounds))
    if not parts:
        return false()
    return parts[0] if len(parts) == 1 else or_(*parts)


def filter_conditions(D: Any, query: IndexQuery) -> list[ColumnElement[bool]]:
    return [scope_condition(D, query), *other_conditions(D, query)]


def other_conditions(D: Any, query: IndexQuery) -> list[ColumnElement[bool]]:
    """The filters but the scope."""
    found: list[ColumnElement[bool]] = []
    if query.sender_ids:
        found.append(D.sender_id.in_(list(query.sender_ids)))
    if query.after_us is not None:
        found.append(D.created_at_us >= query.after_us)
    if query.before_us is not None:
        found.append(D.created_at_us < query.before_us)
    if query.has_file:
        found.append(D.has_file == true())
    if query.has_link:
        found.append(D.has_link == true())
    if query.mentions is not None:
        found.append(D.mentions.like(f"% {escape_like(query.mentions)} %", escape="\\"))
    if query.is_thread:
        found.append(D.thread_root_seq.is_not(None))
    return found


def after_condition(D: Any, after: After) -> ColumnElement[bool]:
    at, cid, seq = after
    return or_(
        D.created_at_us < at,
        and_(
            D.created_at_us == at,
            or_(D.conversation_id < cid, and_(D.conversation_id == cid, D.seq < seq)),
        ),
    )


def newest_first(D: Any) -> tuple[Any, ...]:
    return (D.created_at_us.desc(), D.conversation_id.desc(), D.seq.desc())


class SqlIndexBase:
    """The statements both engines run alike on the adapter's `docs` table; `_match` is
    how tokens match."""

    docs: Table

    def _match(self, tokens: Sequence[str]) -> ColumnElement[bool]:
        raise NotImplementedError

    def _where(self, query: IndexQuery) -> list[ColumnElement[bool]]:
        where = filter_conditions(self.docs.c, query)
        if query.tokens:
            where.append(self._match([cut(t) for t in query.tokens]))
        return where

    async def newest(
        self, tx: Tx, query: IndexQuery, *, after: After | None, limit: int
    ) -> list[Hit]:
        where = self._where(query)
        if after is not None:
            where.append(after_condition(self.docs.c, after))
        D = self.docs.c
        stmt = (
            select(D.conversation_id, D.seq, D.created_at_us)
            .where(*where)
            .order_by(*newest_first(D))
            .limit(limit)
        )
        rows = await connection(tx).execute(stmt)
        return [Hit(r.conversation_id, int(r.seq), int(r.created_at_us)) for r in rows]

    async def counts(
        self, tx: Tx, query: IndexQuery, *, scan: int
    ) -> tuple[dict[str, int], bool]:
        where = self._where(query)
        inner = select(self.docs.c.conversation_id).where(*where).limit(scan + 1).subquery()
        stmt = select(inner.c.conversation_id, func.count()).group_by(inner.c.conversation_id)
        found = {r[0]: int(r[1]) for r in await connection(tx).execute(stmt)}
        more = sum(found.values()) > scan
        return found, more

    async def documents(self, tx: Tx) -> int:
        total = (await connection(tx).execute(select(func.count()).select_from(self.docs)))
        return int(total.scalar() or 0)
