"""The search index on PostgreSQL full-text search (scale-out).

`search_docs.tsv` is generated from the tokens (migration 0016:
array_to_tsvector(string_to_array(tokens, ' '))): each token one lexeme, exactly as
text.index_tokens made it, never re-parsed. A query is a tsquery of quoted lexemes
joined by `&`, cast from text (a cast applies no dictionary either), matched with `@@`
through the GIN index; relevance is ts_rank over the bounded window of newest matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Column, cast, column, delete, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import TSVECTOR, insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType

from tidings.search.ports import Hit, IndexQuery, SearchDoc
from tidings.search.sqlindex import (
    IN_CHUNK,
    SqlIndexBase,
    connection,
    cut,
    docs_table,
    newest_first,
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


class PostgresIndex(SqlIndexBase):
    docs = docs

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
        newest = (
            select(D.conversation_id, D.seq, D.created_at_us, D.tsv)
            .where(*self._where(query))
            .order_by(*newest_first(D))
            .limit(window)
            .subquery()
        )
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


