"""The search index on SQLite FTS5 (the embedded default).

`search_fts` is a contentless FTS5 table (migration 0016) whose rowid is the document's
`doc_id` in `search_docs`. Each token is written hex-encoded (its UTF-8 bytes): FTS5's
`ascii` tokenizer then sees words of [0-9a-f] only, separated by spaces, so a token
matches exactly and whole (`10.0.3.7`, `inc-4521`, `数据库`), and a MATCH expression made
of quoted hex words has nothing a user could inject.

Beside the tokens, a document's FTS row carries its filter terms (they have an `x`, so
no hex word is one): `xd` (every document), `xc<conversation>`, `xs<sender>`,
`xm<mentioned user>`, `xfile`, `xlink`. And `doc_id` is made from the message's time
(created_at_us * 1024 + a few bits of its key), so that rowid order is newest-first
order. A search is then one FTS5
query that walks the index newest first and stops after the page (ORDER BY rowid DESC
LIMIT n, every condition in the MATCH but the few joined from search_docs: a left
member's seq bound, threads), whatever the size of the index: 1,000,000 documents
answer in milliseconds where `doc_id IN (every match)` took seconds for common words.

A contentless table keeps no text, so removing a document passes FTS5 its old row
('delete' command), made again from its search_docs row.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    and_,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from tidings.search.ports import After, Hit, IndexQuery, SearchDoc
from tidings.search.sqlindex import (
    IN_CHUNK,
    SqlIndexBase,
    connection,
    cut,
    docs_table,
    keys_clause,
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
_KEY = frozenset({"conversation_id", "seq"})
ID_BITS = 10  # doc_id = created_at_us << ID_BITS | a slot (a hash of the key, then probed)
# at most this many conversations are matched in the FTS query; beyond, in the join
MATCH_SCOPES_MAX = 64


def _hex(token: str) -> str:
    return token.encode().hex()


def hexed(tokens: str) -> str:
    """The FTS5 words of a space-separated token list."""
    return " ".join(_hex(t) for t in tokens.split(" ") if t)


def fts_row(values: dict[str, Any]) -> str:
    """A document's FTS5 text: its hex words and its filter terms."""
    terms = [hexed(str(values["tokens"])), "xd", f"xc{values['conversation_id']}"]
    terms.append(f"xs{values['sender_id']}")
    terms += [f"xm{u}" for u in str(values["mentions"]).split()]
    if values["has_file"]:
        terms.append("xfile")
    if values["has_link"]:
        terms.append("xlink")
    return " ".join(t for t in terms if t)


def _term(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def match_expression(tokens: Sequence[str]) -> str:
    """Every token (AND), each a quoted hex word."""
    return " AND ".join(_term(_hex(cut(t))) for t in dict.fromkeys(tokens) if t)


def _any_of(terms: Sequence[str]) -> str:
    return "(" + " OR ".join(_term(t) for t in terms) + ")"


class Fts5Index(SqlIndexBase):
    docs = docs_with_id

    def _match(self, tokens: Sequence[str]) -> ColumnElement[bool]:  # pragma: no cover
        raise NotImplementedError  # every query is _select's

    # --- querying ---------------------------------------------------------------------
    def _select(
        self, query: IndexQuery, columns: str, *, before_rowid: int | None
    ) -> tuple[str, dict[str, object]]:
        """The FTS5 query of `query`: the MATCH holds the words and the filters, the join
        what FTS5 cannot hold; rowids descending (newest first)."""
        parts: list[str] = []
        params: dict[str, object] = {}
        if query.tokens:
            parts.append(match_expression(query.tokens))
        scopes = query.scopes
        in_match = len(scopes) <= MATCH_SCOPES_MAX
        if in_match:
            parts.append(_any_of([f"xc{s.conversation_id}" for s in scopes]))
        if query.sender_ids:
            parts.append(_any_of([f"xs{u}" for u in query.sender_ids]))
        if query.mentions is not None:
            parts.append(_term(f"xm{query.mentions}"))
        if query.has_file:
            parts.append(_term("xfile"))
        if query.has_link:
            parts.append(_term("xlink"))
        where = ["search_fts MATCH :match"]
        params["match"] = " AND ".join(parts) if parts else _term("xd")  # every document
        if not in_match:
            names = []
            for i, scope in enumerate(scopes):
                params[f"sc{i}"] = scope.conversation_id
                names.append(f":sc{i}")
            where.append(f"d.conversation_id IN ({', '.join(names)})")
        for i, scope in enumerate(s for s in scopes if s.max_seq is not None):
            params[f"lc{i}"] = scope.conversation_id
            params[f"ls{i}"] = scope.max_seq
            where.append(f"NOT (d.conversation_id = :lc{i} AND d.seq > :ls{i})")
        for i, scope in enumerate(s for s in scopes if s.min_seq > 1):
            params[f"fc{i}"] = scope.conversation_id
            params[f"fs{i}"] = scope.min_seq
            where.append(f"NOT (d.conversation_id = :fc{i} AND d.seq < :fs{i})")
        if query.after_us is not None:
            where.append("search_fts.rowid >= :lo")
            params["lo"] = query.after_us << ID_BITS
        if query.before_us is not None:
            where.append("search_fts.rowid < :hi")
            params["hi"] = query.before_us << ID_BITS
        if before_rowid is not None:
            where.append("search_fts.rowid < :before")
            params["before"] = before_rowid
        if query.is_thread:
            where.append("d.thread_root_seq IS NOT NULL")
        sql = (
            f"SELECT {columns} FROM search_fts JOIN search_docs d"
            f" ON d.doc_id = search_fts.rowid WHERE {' AND '.join(where)}"
            " ORDER BY search_fts.rowid DESC LIMIT :limit"
        )
        return sql, params

    async def _rowid_of(self, tx: Tx, after: After) -> int:
        at, cid, seq = after
        found = (
            await connection(tx).execute(
                select(DOC_ID).where(D.conversation_id == cid, D.seq == seq)
            )
        ).scalar()
        return int(found) if found is not None else at << ID_BITS

    async def newest(
        self, tx: Tx, query: IndexQuery, *, after: After | None, limit: int
    ) -> list[Hit]:
        before = None if after is None else await self._rowid_of(tx, after)
        sql, params = self._select(
            query, "d.conversation_id, d.seq, d.created_at_us", before_rowid=before
        )
        rows = await connection(tx).execute(text(sql), {**params, "limit": limit})
        return [Hit(r[0], int(r[1]), int(r[2])) for r in rows]

    async def ranked(self, tx: Tx, query: IndexQuery, *, window: int) -> list[Hit]:
        score = "bm25(search_fts)" if query.tokens else "0.0"
        sql, params = self._select(
            query, f"d.conversation_id, d.seq, d.created_at_us, {score}", before_rowid=None
        )
        rows = await connection(tx).execute(text(sql), {**params, "limit": window})
        hits = [Hit(r[0], int(r[1]), int(r[2]), -float(r[3])) for r in rows]
        # stable: equal scores keep the newest-first order
        return sorted(hits, key=lambda h: -h.score)

    async def counts(
        self, tx: Tx, query: IndexQuery, *, scan: int
    ) -> tuple[dict[str, int], bool]:
        sql, params = self._select(query, "d.conversation_id AS cid", before_rowid=None)
        grouped = f"SELECT cid, count(*) FROM ({sql}) GROUP BY cid"
        rows = await connection(tx).execute(text(grouped), {**params, "limit": scan + 1})
        found = {r[0]: int(r[1]) for r in rows}
        return found, sum(found.values()) > scan

    # --- writing ----------------------------------------------------------------------
    async def _existing(
        self, tx: Tx, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[int, str]]:
        """doc_id and FTS5 row of the documents of these keys that exist."""
        found: dict[tuple[str, int], tuple[int, str]] = {}
        conn = connection(tx)
        unique = list(dict.fromkeys(keys))
        cols = [D[name] for name in ("conversation_id", "seq", "sender_id", "tokens",
                                     "has_file", "has_link", "mentions")]
        for start in range(0, len(unique), 200):
            chunk = unique[start : start + 200]
            where, params = keys_clause(chunk)
            for row in await conn.execute(select(DOC_ID, *cols).where(where), params):
                values = dict(row._mapping)
                found[(row.conversation_id, int(row.seq))] = (int(row.doc_id), fts_row(values))
        return found

    async def _free_ids(self, tx: Tx, wanted: list[int]) -> list[int]:
        """`wanted` ids, each moved up to the next id no document has (two messages of
        the same microsecond whose keys hash alike: rare; a few rounds at most)."""
        conn = connection(tx)
        out = list(wanted)
        pending = list(range(len(out)))
        while pending:
            ids = [out[i] for i in pending]
            taken: set[int] = set()
            for start in range(0, len(ids), IN_CHUNK):
                chunk = ids[start : start + IN_CHUNK]
                rows = await conn.execute(select(DOC_ID).where(DOC_ID.in_(chunk)))
                taken.update(int(r[0]) for r in rows)
            seen: set[int] = set()
            again: list[int] = []
            for i in pending:
                if out[i] in taken or out[i] in seen:
                    out[i] += 1
                    again.append(i)
                else:
                    seen.add(out[i])
            pending = again
            # ids settled earlier are no longer checked: keep them apart from the moved
            moved = set(again)
            settled = {out[i] for i in range(len(out)) if i not in moved}
            for i in again:
                while out[i] in settled:
                    out[i] += 1
        return out

    async def put(self, tx: Tx, docs: Sequence[SearchDoc]) -> None:
        if not docs:
            return
        latest = {(d.conversation_id, d.seq): d for d in docs}
        existing = await self._existing(tx, list(latest))
        conn = connection(tx)
        if existing:
            await conn.execute(
                _FTS_DELETE, [{"rowid": i, "tokens": row} for i, row in existing.values()]
            )
        fresh = [key for key in latest if key not in existing]
        ids = await self._free_ids(
            tx,
            [
                (latest[k].created_at_us << ID_BITS)
                | (zlib.crc32(f"{k[0]}:{k[1]}".encode()) & ((1 << ID_BITS) - 1) & ~7)
                for k in fresh
            ],
        )
        new_id = dict(zip(fresh, ids, strict=True))
        updates: list[dict[str, object]] = []
        inserts: list[dict[str, object]] = []
        fts: list[dict[str, object]] = []
        for key, doc in latest.items():
            values = row_values(doc)
            if key in existing:
                doc_id = existing[key][0]
                updates.append({**values, "k_cid": doc.conversation_id, "k_seq": doc.seq})
            else:
                doc_id = new_id[key]
                inserts.append({**values, "doc_id": doc_id})
            fts.append({"rowid": doc_id, "tokens": fts_row(values)})
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
            _FTS_DELETE, [{"rowid": i, "tokens": row} for i, row in existing.values()]
        )
        ids = [doc_id for doc_id, _ in existing.values()]
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            await conn.execute(delete(docs_with_id).where(DOC_ID.in_(chunk)))
