"""The search index on PostgreSQL full-text search (scale-out).

`search_docs.tsv` is generated from the tokens (migration 0016:
array_to_tsvector(string_to_array(tokens, ' '))): each token one lexeme, exactly as
text.index_tokens made it, never re-parsed. A query is a tsquery of quoted lexemes
joined by `&`, cast from text (a cast applies no dictionary either), matched with `@@`
through the GIN index; relevance is ts_rank over the bounded window of newest matches.

A very common token (`的`, `the`: in half the documents) makes the GIN scan fetch and
sort hundreds of thousands of rows for a page of 50. For a query whose every token is
common (its frequency, from the statistics ANALYZE keeps of `tsv`, pg_stats'
most_common_elems, at least WALK_FREQUENCY), the caller's conversations are walked
instead, newest first, each by `(conversation_id, created_at_us, seq)`: one branch per
conversation, merged (Merge Append) and filtered by the tsvector, so a page reads about
as many rows as it returns divided by the token's frequency.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import (
    Column,
    cast,
    column,
    delete,
    func,
    literal,
    select,
    text,
    tuple_,
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
    escape_like,
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


# The plan of a query with tokens, chosen per query from the tokens' frequencies (the
# statistics ANALYZE keeps of `tsv`: pg_stats.most_common_elems, read again after
# FREQUENCY_TTL seconds) and the caller's conversations' sizes:
#   gin:     the GIN index ANDed with the conversations (rare tokens: few rows);
#   lateral: each conversation newest first by (conversation_id, created_at_us, seq),
#            filtered by the tsvector, the branches merged (Merge Append): reads about
#            limit / frequency rows, and costs a plan of one branch per conversation.
# The estimates are in rows read. (A walk of all documents by time was tried: it reads
# far more rows than these when the caller's conversations are a small part.)
WALK_FREQUENCY = 0.01  # a token rarer than this (or not in the statistics): gin
GIN_ENTRY_COST = 0.5  # a posting entry read, its bitmap built, its row rechecked
LATERAL_SCOPE_COST = 100.0  # planning one branch costs about as much as reading this many rows
FREQUENCY_TTL = 300.0
_STATS = text(
    "SELECT s.most_common_elems::text::text[] AS elems, s.most_common_elem_freqs AS freqs,"
    " c.reltuples AS total"
    " FROM pg_class c LEFT JOIN pg_stats s ON s.tablename = 'search_docs'"
    " AND s.attname = 'tsv' AND s.schemaname = current_schema()"
    " WHERE c.oid = to_regclass('search_docs')"
)


class PostgresIndex(SqlIndexBase):
    docs = docs

    def __init__(self) -> None:
        self._frequencies: dict[str, float] = {}
        self._total = 0.0
        self._stats_at = -FREQUENCY_TTL

    async def _stats(self, tx: Tx) -> tuple[dict[str, float], float]:
        now = time.monotonic()
        if now - self._stats_at >= FREQUENCY_TTL:
            self._stats_at = now
            row = (await connection(tx).execute(_STATS)).first()
            found: dict[str, float] = {}
            total = 0.0
            if row is not None:
                total = float(row.total or 0.0)
                if row.elems and row.freqs:
                    found = {
                        str(e): float(f) for e, f in zip(row.elems, row.freqs, strict=False)
                    }
            self._frequencies, self._total = found, total
        return self._frequencies, self._total

    async def _plan(self, tx: Tx, query: IndexQuery, limit: int) -> str:
        """gin or lateral (above) for the newest `limit` matches."""
        if not query.tokens:
            return "gin"
        freqs, total = await self._stats(tx)
        each = [freqs.get(cut(t), 0.0) for t in query.tokens]
        if total <= 0 or min(each) < WALK_FREQUENCY:
            return "gin"
        f = 1.0
        for x in each:
            f *= x
        if query.sender_ids:
            f *= 0.2  # a guess: a sender writes a part of their conversations
        sizes = [s.messages for s in query.scopes]
        scope_docs = float(sum(n for n in sizes if n is not None))
        if any(n is None for n in sizes) or scope_docs <= 0:
            return "gin"
        if query.after_us is not None or query.before_us is not None:
            f *= 0.3  # a guess: the range holds a part of the documents
        gin = sum(each) * total * GIN_ENTRY_COST + f * scope_docs
        lateral = limit / f + LATERAL_SCOPE_COST * len(sizes)
        return "lateral" if lateral < gin else "gin"

    def _lateral(
        self, query: IndexQuery, after: After | None, limit: int, *, ordered: bool = True,
        extra: str = ""
    ) -> tuple[str, dict[str, object]]:
        """The matches of `query`, one branch per conversation, each at most `limit` of
        its newest (its index newest first), UNION ALL: ordered by the caller,
        PostgreSQL merges the branches (Merge Append) and reads about `limit` /
        frequency rows. SQL text made here (compiling one SQLAlchemy branch per
        conversation cost more than the query). `ts_match_vq`, not `@@`: no index can
        answer it, so no branch becomes one more GIN scan."""
        params: dict[str, object] = {"q": tsquery_text([cut(t) for t in query.tokens]),
                                     "lim": limit}
        rest = ""
        if query.sender_ids:
            names = []
            for i, sender in enumerate(query.sender_ids):
                params[f"u{i}"] = sender
                names.append(f":u{i}")
            rest += f" AND sender_id IN ({', '.join(names)})"
        if query.after_us is not None:
            params["lo"] = query.after_us
            rest += " AND created_at_us >= :lo"
        if query.before_us is not None:
            params["hi"] = query.before_us
            rest += " AND created_at_us < :hi"
        if query.has_file:
            rest += " AND has_file"
        if query.has_link:
            rest += " AND has_link"
        if query.mentions is not None:
            params["mention"] = f"% {escape_like(query.mentions)} %"
            rest += " AND mentions LIKE :mention ESCAPE '\\'"
        if query.is_thread:
            rest += " AND thread_root_seq IS NOT NULL"
        if after is not None:
            params["at"], params["acid"], params["aseq"] = after
        branches = []
        for i, scope in enumerate(query.scopes):
            params[f"c{i}"] = scope.conversation_id
            where = f"conversation_id = :c{i} AND ts_match_vq(tsv, CAST(:q AS tsquery)){rest}"
            if scope.max_seq is not None:
                params[f"m{i}"] = scope.max_seq
                where += f" AND seq <= :m{i}"
            if scope.min_seq > 1:
                params[f"n{i}"] = scope.min_seq
                where += f" AND seq >= :n{i}"
            if after is not None:
                cid = after[1]
                if scope.conversation_id < cid:
                    where += " AND created_at_us <= :at"
                elif scope.conversation_id > cid:
                    where += " AND created_at_us < :at"
                else:
                    where += " AND created_at_us <= :at AND (created_at_us < :at OR seq < :aseq)"
            order = " ORDER BY created_at_us DESC, seq DESC" if ordered else ""
            branches.append(
                f"(SELECT conversation_id, seq, created_at_us{extra} FROM search_docs"
                f" WHERE {where}{order} LIMIT :lim)"
            )
        return " UNION ALL ".join(branches), params

    async def newest(
        self, tx: Tx, query: IndexQuery, *, after: After | None, limit: int
    ) -> list[Hit]:
        if await self._plan(tx, query, limit) == "gin":
            return await super().newest(tx, query, after=after, limit=limit)
        union, params = self._lateral(query, after, limit)
        sql = (
            f"SELECT conversation_id, seq, created_at_us FROM ({union}) AS w"
            " ORDER BY created_at_us DESC, conversation_id DESC, seq DESC LIMIT :lim"
        )
        rows = await connection(tx).execute(text(sql), params)
        return [Hit(r.conversation_id, int(r.seq), int(r.created_at_us)) for r in rows]

    async def counts(
        self, tx: Tx, query: IndexQuery, *, scan: int
    ) -> tuple[dict[str, int], bool]:
        share = max(1, scan // len(query.scopes))
        if await self._plan(tx, query, share) == "gin":
            return await super().counts(tx, query, scan=scan)
        # common tokens: each conversation its share of the scan, any of its matches
        union, params = self._lateral(query, None, share + 1, ordered=False)
        sql = f"SELECT conversation_id, count(*) FROM ({union}) AS w GROUP BY conversation_id"
        found = {r[0]: int(r[1]) for r in await connection(tx).execute(text(sql), params)}
        more = any(n > share for n in found.values())
        return {c: min(n, share) for c, n in found.items()}, more

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
        if await self._plan(tx, query, window) == "lateral":
            union, params = self._lateral(query, None, window, extra=", tsv")
            sql = (
                "SELECT conversation_id, seq, created_at_us,"
                " ts_rank(tsv, CAST(:q AS tsquery)) AS score FROM"
                f" (SELECT * FROM ({union}) AS w ORDER BY created_at_us DESC,"
                " conversation_id DESC, seq DESC LIMIT :lim) AS n"
                " ORDER BY score DESC, created_at_us DESC, conversation_id DESC, seq DESC"
            )
            rows = await connection(tx).execute(text(sql), params)
            return [
                Hit(r.conversation_id, int(r.seq), int(r.created_at_us), float(r.score))
                for r in rows
            ]
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


