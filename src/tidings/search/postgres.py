"""The search index on PostgreSQL full-text search (scale-out).

`search_docs.tsv` is generated from the tokens (migration 0016:
array_to_tsvector(string_to_array(tokens, ' '))): each token one lexeme, exactly as
text.index_tokens made it, never re-parsed. A query is a tsquery of quoted lexemes
joined by `&`, cast from text (a cast applies no dictionary either), matched with `@@`
through the GIN index; relevance is ts_rank over the bounded window of newest matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    and_,
    cast,
    column,
    delete,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSVECTOR, insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType

from tidings.search.ports import After, Hit, IndexQuery, SearchDoc
from tidings.search.sqlindex import (
    IN_CHUNK,
    SqlIndexBase,
    connection,
    cut,
    docs_table,
    newest_first,
    other_conditions,
    row_values,
)
from tidings.store.ports import Tx


class TsQuery(UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **_kw: object) -> str:
        return "tsquery"


# the generated column: read by the queries, never written
docs = docs_table(Column("tsv", TSVECTOR, nullable=True))
D = docs.c


def lexeme(token: str) -> str:
    """A token as a quoted tsquery lexeme (quotes doubled, backslashes escaped)."""
    return "'" + cut(token).replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery_text(tokens: Sequence[str]) -> str:
    return " & ".join(lexeme(t) for t in dict.fromkeys(tokens) if t)


# up to this many conversations, newest-first queries are one per conversation (UNION ALL)
PER_SCOPE_MAX = 100


def _after_in(cid: str, after: After) -> ColumnElement[bool]:
    """In conversation `cid`: after (at, c, s) in newest-first order."""
    at, c, s = after
    if cid < c:
        return D.created_at_us <= at
    if cid > c:
        return D.created_at_us < at
    return or_(D.created_at_us < at, and_(D.created_at_us == at, D.seq < s))


class PostgresIndex(SqlIndexBase):
    """Newest first, for a caller in up to PER_SCOPE_MAX conversations: one query per
    conversation, merged (UNION ALL under ORDER BY ... LIMIT). The planner picks, for
    each, the GIN index (a rare word: its few matches, sorted) or a backward scan of
    (conversation_id, created_at_us) that stops after the page (a common word, or
    filters only), from the tsvector's statistics; one query over all conversations
    would fetch and sort every match of a common word (tens of thousands at 1M)."""

    docs = docs

    def _merged(
        self, query: IndexQuery, after: After | None, limit: int, *extra: Any
    ) -> Any:
        base = other_conditions(D, query)
        if query.tokens:
            base.append(self._match([cut(t) for t in query.tokens]))
        parts = []
        for scope in query.scopes:
            where = [D.conversation_id == scope.conversation_id, *base]
            if scope.max_seq is not None:
                where.append(D.seq <= scope.max_seq)
            if after is not None:
                where.append(_after_in(scope.conversation_id, after))
            one = (
                select(D.conversation_id, D.seq, D.created_at_us, *extra)
                .where(*where)
                .order_by(D.created_at_us.desc(), D.seq.desc())
                .limit(limit)
                .subquery()
            )
            parts.append(select(one))
        merged = union_all(*parts).subquery()
        m = merged.c
        return (
            select(merged)
            .order_by(m.created_at_us.desc(), m.conversation_id.desc(), m.seq.desc())
            .limit(limit)
        )

    async def newest(
        self, tx: Tx, query: IndexQuery, *, after: After | None, limit: int
    ) -> list[Hit]:
        if len(query.scopes) > PER_SCOPE_MAX:
            return await super().newest(tx, query, after=after, limit=limit)
        rows = await connection(tx).execute(self._merged(query, after, limit))
        return [Hit(r.conversation_id, int(r.seq), int(r.created_at_us)) for r in rows]

    def _tsquery(self, tokens: Sequence[str]) -> ColumnElement[str]:
        return cast(literal(tsquery_text(tokens)), TsQuery())

    def _match(self, tokens: Sequence[str]) -> ColumnElement[bool]:
        return D.tsv.op("@@")(self._tsquery(tokens))

    async def put(self, tx: Tx, docs: Sequence[SearchDoc]) -> None:
        if not docs:
            return
        latest = {(d.conversation_id, d.seq): row_values(d) for d in docs}
        stmt = insert(self.docs)
        stmt = stmt.on_conflict_do_update(
            index_elements=[D.conversation_id, D.seq],
            set_={
                name: getattr(stmt.excluded, name)
                for name in next(iter(latest.values()))
                if name not in ("conversation_id", "seq")
            },
        )
        await connection(tx).execute(stmt, list(latest.values()))

    async def remove(self, tx: Tx, keys: Sequence[tuple[str, int]]) -> None:
        unique = list(dict.fromkeys(keys))
        conn = connection(tx)
        for start in range(0, len(unique), IN_CHUNK):
            chunk = unique[start : start + IN_CHUNK]
            await conn.execute(
                delete(self.docs).where(tuple_(D.conversation_id, D.seq).in_(chunk))
            )

    async def ranked(self, tx: Tx, query: IndexQuery, *, window: int) -> list[Hit]:
        if len(query.scopes) > PER_SCOPE_MAX:
            newest = (
                select(D.conversation_id, D.seq, D.created_at_us, D.tsv)
                .where(*self._where(query))
                .order_by(*newest_first(D))
                .limit(window)
                .subquery()
            )
        else:
            newest = self._merged(query, None, window, D.tsv).subquery()
        n = newest.c
        if query.tokens:
            score: ColumnElement[float] = func.ts_rank(n.tsv, self._tsquery(query.tokens))
        else:
            score = literal(0.0)
        stmt = select(n.conversation_id, n.seq, n.created_at_us, score.label("score")).order_by(
            column("score").desc(), n.created_at_us.desc(), n.conversation_id.desc(), n.seq.desc()
        )
        rows = await connection(tx).execute(stmt)
        return [
            Hit(r.conversation_id, int(r.seq), int(r.created_at_us), float(r.score)) for r in rows
        ]


