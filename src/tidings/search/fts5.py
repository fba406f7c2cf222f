"""The search index on SQLite FTS5 (the embedded default).

`search_fts` is a contentless FTS5 table (migration 0016) whose rowid is the document's
`doc_id` in `search_docs`. Each token is written hex-encoded (its UTF-8 bytes): FTS5's
`ascii` tokenizer then sees words of [0-9a-f] only, separated by spaces, so a token
matches exactly and whole (`10.0.3.7`, `inc-4521`, `数据库`), and a MATCH expression made
of quoted hex words has nothing a user could inject. A contentless table keeps no
text, so removing a document passes FTS5 its old tokens ('delete' command), read from
`search_docs.tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    Column,
    Integer,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from tidings.search.ports import Hit, IndexQuery, SearchDoc
from tidings.search.sqlindex import (
    IN_CHUNK,
    SqlIndexBase,
    connection,
    cut,
    docs_table,
    keys_clause,
    newest_first,
    row_values,
)
from tidings.store.ports import Tx

_FTS_INSERT = text("INSERT INTO search_fts (rowid, tokens) VALUES (:rowid, :tokens)")
_FTS_DELETE = text(
    "INSERT INTO search_fts (search_fts, rowid, tokens) VALUES ('delete', :rowid, :tokens)"
)
# search_docs as SQLite has it: with its rowid alias doc_id
docs_with_id = docs_table(Column("doc_id", Integer, primary_key=True))
D = docs_with_id.c
DOC_ID = D.doc_id


def hexed(tokens: str) -> str:
    """The FTS5 text of a space-separated token list."""
    return " ".join(t.encode().hex() for t in tokens.split(" ") if t)


def match_expression(tokens: Sequence[str]) -> str:
    """Every token (implicit AND), each a quoted hex word."""
    return " ".join(f'"{cut(t).encode().hex()}"' for t in dict.fromkeys(tokens) if t)


_KEY = frozenset({"conversation_id", "seq"})


class Fts5Index(SqlIndexBase):
    docs = docs_with_id
    def _match(self, tokens: Sequence[str]) -> ColumnElement[bool]:
        matching = text("SELECT rowid FROM search_fts WHERE search_fts MATCH :match").bindparams(
            match=match_expression(tokens)
        )
        return DOC_ID.in_(matching.columns(rowid=Integer()).scalar_subquery())

    async def _existing(
        self, tx: Tx, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[int, str]]:
        found: dict[tuple[str, int], tuple[int, str]] = {}
        conn = connection(tx)
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 200):
            chunk = unique[start : start + 200]
            where, params = keys_clause(chunk)
            stmt = select(DOC_ID, D.conversation_id, D.seq, D.tokens).where(where)
            for row in await conn.execute(stmt, params):
                found[(row[1], int(row[2]))] = (int(row[0]), row[3])
        return found

    async def put(self, tx: Tx, docs: Sequence[SearchDoc]) -> None:
        if not docs:
            return
        latest = {(d.conversation_id, d.seq): d for d in docs}
        existing = await self._existing(tx, list(latest))
        conn = connection(tx)
        stale = [{"rowid": doc_id, "tokens": hexed(tokens)} for doc_id, tokens in existing.values()]
        if stale:
            await conn.execute(_FTS_DELETE, stale)
        updates: list[dict[str, object]] = []
        inserts: list[dict[str, object]] = []
        fts: list[dict[str, object]] = []
        next_id = int(
            (await conn.execute(select(func.coalesce(func.max(DOC_ID), 0)))).scalar() or 0
        )
        for key, doc in latest.items():
            values = row_values(doc)
            if key in existing:
                doc_id = existing[key][0]
                updates.append({**values, "k_cid": doc.conversation_id, "k_seq": doc.seq})
            else:
                next_id += 1
                doc_id = next_id
                inserts.append({**values, "doc_id": doc_id})
            fts.append({"rowid": doc_id, "tokens": hexed(str(values["tokens"]))})
        if inserts:
            await conn.execute(insert(docs_with_id), inserts)
        if updates:
            await conn.execute(
                update(docs_with_id)
                .where(
                    and_(
                        D.conversation_id == bindparam("k_cid"), D.seq == bindparam("k_seq")
                    )
                )
                .values({k: bindparam(k) for k in row_values(docs[0]) if k not in _KEY}),
                updates,
            )
        await conn.execute(_FTS_INSERT, fts)

    async def remove(self, tx: Tx, keys: Sequence[tuple[str, int]]) -> None:
        if not keys:
            return
        existing = await self._existing(tx, keys)
        if not existing:
            return
        conn = connection(tx)
        await conn.execute(
            _FTS_DELETE,
            [{"rowid": doc_id, "tokens": hexed(tokens)} for doc_id, tokens in existing.values()],
        )
        ids = [doc_id for doc_id, _ in existing.values()]
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            await conn.execute(delete(docs_with_id).where(DOC_ID.in_(chunk)))

    async def ranked(self, tx: Tx, query: IndexQuery, *, window: int) -> list[Hit]:
        conn = connection(tx)
        newest = await conn.execute(
            select(DOC_ID, D.conversation_id, D.seq, D.created_at_us)
            .where(*self._where(query))
            .order_by(*newest_first(D))
            .limit(window)
        )
        rows = list(newest)
        if not query.tokens or not rows:
            return [Hit(r[1], int(r[2]), int(r[3])) for r in rows]
        scores: dict[int, float] = {}
        ids = [int(r[0]) for r in rows]
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ",".join(str(i) for i in ids[start : start + IN_CHUNK])
            scored = await conn.execute(
                text(
                    "SELECT rowid, bm25(search_fts) FROM search_fts"
                    f" WHERE search_fts MATCH :match AND rowid IN ({chunk})"
                ).bindparams(match=match_expression(query.tokens))
            )
            scores.update((int(r[0]), -float(r[1])) for r in scored)
        hits = [Hit(r[1], int(r[2]), int(r[3]), scores.get(int(r[0]), 0.0)) for r in rows]
        # stable: equal scores keep the newest-first order
        return sorted(hits, key=lambda h: -h.score)

