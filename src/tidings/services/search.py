"""Search (issue 16): find any message the caller may see, and keep the index.

A search reads the caller's member rows (active or left: the same rule as history,
core/rules.py:visible_seq_limit), turns them into the index query's scopes (each
conversation up to the member's `left_seq`), and asks the index (search/ports.py) for
the matches, newest first or by relevance over a bounded window. Every candidate is
then read back from the messages and checked again before it is a result: a recalled
message is never one, an edited one matches by its current text only (even while its
index job has not run yet), a phrase must be in the normalised body. Highlights are
code-point ranges of the body (text.highlight_spans); cursors are opaque.

Indexing is a job, never on the send path: the event consumer "search" turns committed
message events (sent, edited, recalled) into `search.index` jobs, one per batch of
search_index_batch messages (grouped by conversation in the payload); the job reads
the messages as they are now and writes or removes their documents in one write
transaction. `reindex` rebuilds the whole index from the
messages, online (batch by batch, while searches and jobs go on).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from datetime import time as day_time

import orjson
import structlog

from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidInput, NotFound
from tidings.core.jobs import Job, JobPolicy, JobState, NewJob
from tidings.core.models import ConversationId, Message, StoredEvent, User
from tidings.core.rules import check_admin, visible_seq_limit
from tidings.core.search import IndexStatus, SearchCount, SearchPage, SearchResult
from tidings.search import text
from tidings.search.ports import After, Hit, IndexQuery, Scope, SearchDoc, SearchIndex
from tidings.search.query import ParsedQuery, parse
from tidings.services.audit import record
from tidings.services.context import Deps, SearchLimits
from tidings.services.jobs import JobService
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Membership, Tx

log = structlog.get_logger(__name__)

INDEX_JOB = "search.index"
CONSUMER = "search"
QUEUE = "search"
LAST_INDEXED = "search_last_indexed_at"  # meta key
MAX_CURSOR_CHARS = 200
_INDEXED_KINDS = frozenset({"message", "message_edited", "message_deleted"})
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S")
_CONTROL = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

Progress = Callable[[int, int], None]


def micros(at: datetime) -> int:
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1_000_000)


def searchable_text(message: Message) -> str:
    """What a message is indexed under: its body and its attachments' file names."""
    return " ".join([message.body, *(f.name for f in message.attachments)])


def has_link(body: str) -> bool:
    return _LINK.search(body) is not None


def doc_of(message: Message) -> SearchDoc:
    return SearchDoc(
        conversation_id=message.conversation_id,
        seq=message.seq,
        message_id=message.id,
        sender_id=message.sender_id,
        created_at_us=micros(message.created_at),
        tokens=tuple(dict.fromkeys(text.index_tokens(searchable_text(message)))),
        has_file=bool(message.attachments),
        has_link=has_link(message.body),
        mentions=tuple(message.mentions),
        thread_root_seq=message.thread_root_seq,
    )


# --- cursors ----------------------------------------------------------------------
def _bad_cursor() -> InvalidInput:
    return InvalidInput("cursor: not a cursor of this search", field="cursor")


def encode_cursor(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(cursor: str, order: str) -> dict[str, object]:
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise _bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise _bad_cursor() from None
    if not isinstance(value, dict) or value.get("o") != order[0]:
        raise _bad_cursor()
    return value


def _after_of(value: dict[str, object]) -> After:
    at, cid, seq = value.get("t"), value.get("c"), value.get("s")
    if not (isinstance(at, int) and isinstance(cid, str) and isinstance(seq, int)):
        raise _bad_cursor()
    if len(cid) > 64 or not 0 <= seq < 2**63 or not -(2**62) < at < 2**62:
        raise _bad_cursor()
    return (at, cid, seq)


def _offset_of(value: dict[str, object]) -> int:
    offset = value.get("i")
    if not isinstance(offset, int) or not 0 <= offset <= 10_000_000:
        raise _bad_cursor()
    return offset


# --- the query ----------------------------------------------------------------------
class _Plan:
    """A parsed query resolved for one caller."""

    def __init__(
        self, parsed: ParsedQuery, query: IndexQuery, needles: list[str], unlooked: bool
    ) -> None:
        self.parsed = parsed
        self.query = query
        self.needles = needles  # every token of the query (highlights point at these)
        self.unlooked = unlooked  # some of them were not looked up in the index
        self.phrases = [text.normalize(p) for p in parsed.phrases]


def _check_q(q: str, max_chars: int) -> None:
    if not q or not q.strip():
        raise InvalidInput("q: give words, a phrase or a filter", field="q")
    if len(q) > max_chars:
        raise InvalidInput(f"q: at most {max_chars} characters", field="q")
    if any(unicodedata.category(ch) in _CONTROL and ch not in "\t" for ch in q):
        raise InvalidInput("q: control characters are not allowed", field="q")


def _looked_up(tokens: list[str], cap: int) -> tuple[str, ...]:
    """The tokens the index looks up: all of them, or for a long query (a pasted
    sentence of Chinese is hundreds of bigrams, each a posting list to intersect) the
    `cap` longest, the rarest as a rule, in the query's order."""
    if len(tokens) <= cap:
        return tuple(tokens)
    longest = sorted(range(len(tokens)), key=lambda i: (-len(tokens[i]), i))[:cap]
    return tuple(tokens[i] for i in sorted(longest))


def _scope(m: Membership) -> Scope:
    limit = visible_seq_limit(m.member)
    last = m.conversation.last_seq
    upto = last if limit is None else min(last, limit)
    first = m.member.first_seq
    return Scope(m.conversation.id, limit, max(0, upto - first + 1), min_seq=first)


def _day_start_us(day: object) -> int:
    from datetime import date

    assert isinstance(day, date)
    return micros(datetime.combine(day, day_time(0), tzinfo=UTC))


class SearchService:
    def __init__(
        self, deps: Deps, jobs: JobService, index: SearchIndex, limiter: RateLimiter
    ) -> None:
        self.d = deps
        self.jobs = jobs
        self.index = index
        self.limiter = limiter
        self._reindexing: asyncio.Task[None] | None = None
        jobs.register(
            INDEX_JOB, self._index_job, JobPolicy(max_attempts=10, queue=QUEUE)
        )
        jobs.on_events(CONSUMER, _Consumer(self))

    @property
    def limits(self) -> SearchLimits:
        return self.d.search

    # --- searching ------------------------------------------------------------------
    async def search(
        self,
        actor: User,
        q: str,
        *,
        conversation_id: str | None = None,
        order: str = "newest",
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchPage:
        lim = self.limits
        if order not in ("newest", "relevance"):
            raise InvalidInput("order: newest or relevance", field="order")
        _check_q(q, lim.search_max_query_chars)
        size = lim.search_page_default if limit is None else limit
        if not 1 <= size <= lim.search_page_max:
            raise InvalidInput(f"limit: 1 to {lim.search_page_max}", field="limit")
        position = None if cursor is None else decode_cursor(cursor, order)
        after = None if position is None or order != "newest" else _after_of(position)
        offset = 0 if position is None or order == "newest" else _offset_of(position)
        await self.limiter.check(Action.SEARCH, actor.id, None)
        parsed = parse(q)
        async with self.d.store.read() as tx:
            memberships = await tx.memberships(actor.id)
            plan = await self._plan(tx, actor, parsed, memberships, conversation_id)
            if plan is None:
                return SearchPage([], None, [], False)
            whole = False
            if order == "newest":
                results, next_cursor, whole = await self._newest(tx, plan, after, size)
            else:
                results, next_cursor = await self._ranked(tx, plan, offset, size)
            if whole and after is None:
                # the first page holds every match: its counts are the page's
                found = dict(Counter(str(r.message.conversation_id) for r in results))
                more = False
            else:
                found, more = await self.index.counts(
                    tx, plan.query, scan=lim.search_count_scan_max
                )
        cap = lim.search_count_limit
        counts = sorted(
            (SearchCount(ConversationId(cid), min(n, cap)) for cid, n in found.items()),
            key=lambda c: (-c.count, c.conversation_id),
        )
        capped = more or any(n > cap for n in found.values())
        return SearchPage(results, next_cursor, counts, capped)

    async def _plan(
        self,
        tx: Tx,
        actor: User,
        parsed: ParsedQuery,
        memberships: list[Membership],
        conversation_id: str | None,
    ) -> _Plan | None:
        readable: dict[str, Membership] = {m.conversation.id: m for m in memberships}
        if conversation_id is not None and conversation_id not in readable:
            raise NotFound("no such conversation")
        chosen = set(readable) if conversation_id is None else {conversation_id}
        if parsed.in_conversations:
            named: set[str] = set()
            for name in parsed.in_conversations:
                wanted = name.removeprefix("#").casefold()
                hits = {
                    cid
                    for cid, m in readable.items()
                    if cid == name or (m.conversation.name or "").casefold() == wanted
                }
                if not hits:
                    raise InvalidInput(f"unknown conversation {name[:60]!r}", field="q")
                named |= hits
            chosen &= named
        senders: list[str] = []
        if parsed.from_users:
            users = await tx.users_by_usernames(list(parsed.from_users))
            known = {u.username.casefold(): u for u in users}
            for name in parsed.from_users:
                user = known.get(name.casefold())
                if user is None:
                    raise InvalidInput(f"unknown user {name[:60]!r}", field="q")
                senders.append(user.id)
        scopes = tuple(_scope(readable[cid]) for cid in sorted(chosen))
        if not scopes:
            return None
        tokens: list[str] = []
        for term in (*parsed.words, *parsed.phrases):
            tokens += text.query_tokens(term)
        if parsed.has_text and not tokens:
            return None  # only punctuation: nothing can match it
        needles = list(dict.fromkeys(tokens))
        looked = _looked_up(needles, self.limits.search_max_query_tokens)
        query = IndexQuery(
            scopes=scopes,
            tokens=looked,
            sender_ids=tuple(senders),
            after_us=None if parsed.after is None else _day_start_us(parsed.after) + 86_400_000_000,
            before_us=None if parsed.before is None else _day_start_us(parsed.before),
            has_file=parsed.has_file,
            has_link=parsed.has_link,
            mentions=actor.id if parsed.mentions_me else None,
            is_thread=parsed.is_thread,
        )
        return _Plan(parsed, query, needles, len(looked) < len(needles))

    def _still_matches(self, plan: _Plan, message: Message) -> bool:
        """The message as it is now satisfies the query (the index may lag an edit or
        a recall)."""
        if message.deleted:
            return False
        q = plan.query
        if q.has_file and not message.attachments:
            return False
        if q.has_link and not has_link(message.body):
            return False
        if q.mentions is not None and q.mentions not in message.mentions:
            return False
        if plan.unlooked or (q.tokens and message.edited_at is not None):
            # edited: maybe after its document was written (its job not run yet); a
            # message never edited is what its document was made from. A long query:
            # the index found the messages with its longest tokens, here are all
            current = set(text.index_tokens(searchable_text(message)))
            if not all(t in current for t in plan.needles):
                return False
        if plan.phrases:
            body = text.normalize(message.body)
            if not all(p in body for p in plan.phrases):
                return False
        return True

    async def _checked(self, tx: Tx, plan: _Plan, hits: Sequence[Hit]) -> list[SearchResult | None]:
        found = await tx.messages_by_keys([(h.conversation_id, h.seq) for h in hits])
        out: list[SearchResult | None] = []
        for hit in hits:
            message = found.get((hit.conversation_id, hit.seq))
            if message is None or not self._still_matches(plan, message):
                out.append(None)
            else:
                spans = text.highlight_spans(
                    message.body, list(plan.parsed.words), list(plan.parsed.phrases)
                )
                out.append(SearchResult(message, tuple(spans)))
        return out

    async def _newest(
        self, tx: Tx, plan: _Plan, after: After | None, size: int
    ) -> tuple[list[SearchResult], str | None, bool]:
        """A page, its cursor, and whether the index had no more matches (then the page
        holds every match after `after`)."""
        results: list[SearchResult] = []
        budget = self.limits.search_verify_max
        last: Hit | None = None
        while True:
            batch = min(size + 1 - len(results) + 4, 500)
            hits = await self.index.newest(tx, plan.query, after=after, limit=batch)
            checked = await self._checked(tx, plan, hits)
            for hit, result in zip(hits, checked, strict=True):
                if result is None:
                    last = hit
                    continue
                if len(results) == size:
                    # one more result exists: the page ends at the last one returned
                    assert last is not None
                    return results, _newest_cursor(last), False
                results.append(result)
                last = hit
            budget -= len(hits)
            if len(hits) < batch:
                return results, None, True
            if budget <= 0:
                # a short page: the client carries on from where this one stopped
                return results, None if last is None else _newest_cursor(last), False
            after = (hits[-1].created_at_us, hits[-1].conversation_id, hits[-1].seq)

    async def _ranked(
        self, tx: Tx, plan: _Plan, offset: int, size: int
    ) -> tuple[list[SearchResult], str | None]:
        window = await self.index.ranked(tx, plan.query, window=self.limits.search_relevance_window)
        results: list[SearchResult] = []
        position = offset
        budget = self.limits.search_verify_max
        while position < len(window) and len(results) < size and budget > 0:
            chunk = window[position : position + min(size + 4, 500)]
            checked = await self._checked(tx, plan, chunk)
            for result in checked:
                position += 1
                budget -= 1
                if result is not None:
                    results.append(result)
                    if len(results) == size:
                        break
        more = position < len(window)
        return results, encode_cursor({"o": "r", "i": position}) if more else None

    # --- indexing -------------------------------------------------------------------
    async def _index_job(self, job: Job) -> None:
        messages = job.payload.get("messages")
        if not isinstance(messages, dict):
            return
        keys = [
            (cid, seq)
            for cid, seqs in messages.items()
            if isinstance(cid, str) and isinstance(seqs, list)
            for seq in seqs
            if isinstance(seq, int)
        ]
        await self.index_messages(keys)

    async def index_messages(self, keys: Sequence[tuple[str, int]]) -> int:
        """Bring the documents of these messages, (conversation_id, seq), up to date
        with the messages as they are now, in one write transaction: written when the
        message is there and not recalled, else removed. The segmentation runs before
        that transaction, on the messages as one read found them (the writer is held
        only for the statements: sends wait for it); the write transaction reads them
        again and segments anew only those that changed meanwhile (an edit, a recall).
        Returns how many were written."""
        if not keys:
            return 0
        async with self.d.store.read() as tx:
            prepared = _prepare(await _messages_of(tx, keys))
        async with self.d.store.write() as tx:
            found = await _messages_of(tx, keys)
            docs, gone = _split(found, keys, prepared)
            await self.index.put(tx, docs)
            await self.index.remove(tx, gone)
            await tx.set_meta(LAST_INDEXED, self.d.clock.now().isoformat())
        return len(docs)

    async def reindex(self, actor: User | None, *, progress: Progress | None = None) -> int:
        """Rebuild every document from the messages, online: batch by batch, each its
        own write transaction (searches and index jobs go on meanwhile). Recalled
        messages' documents are removed. Returns how many messages were indexed."""
        check_admin(actor, "rebuild the search index")
        started = time.monotonic()
        batch = self.limits.search_index_batch
        async with self.d.store.read() as tx:
            conversations = await _all_conversations(tx)
        total = sum(c[1] for c in conversations)
        done = indexed = removed = 0
        if progress is not None:
            progress(0, total)
        for cid, last_seq in conversations:
            after = 0
            while after < last_seq:
                upto = min(after + batch, last_seq)
                wanted = [(cid, s) for s in range(after + 1, upto + 1)]
                async with self.d.store.read() as tx:  # segmented outside the writer
                    prepared = _prepare(await _page_of(tx, cid, after, upto))
                async with self.d.store.write() as tx:
                    found = await _page_of(tx, cid, after, upto)
                    docs, gone = _split(found, wanted, prepared)
                    await self.index.put(tx, docs)
                    await self.index.remove(tx, gone)
                    await tx.set_meta(LAST_INDEXED, self.d.clock.now().isoformat())
                indexed += len(docs)
                removed += len(gone)
                done += upto - after
                after = upto
                if progress is not None:
                    progress(done, total)
        async with self.d.store.write() as tx:
            await record(
                tx,
                self.d.clock,
                AuditAction.SEARCH_REINDEXED,
                actor_id=None if actor is None else actor.id,
                details={
                    "indexed": indexed,
                    "removed": removed,
                    "seconds": round(time.monotonic() - started, 1),
                },
            )
        log.info("search_reindexed", indexed=indexed, removed=removed)
        return indexed

    def start_reindex(self, actor: User | None) -> bool:
        """`reindex` in the background of this process (an admin's, from the web).
        False when one is running here already."""
        check_admin(actor, "rebuild the search index")
        if self._reindexing is not None and not self._reindexing.done():
            return False
        task = asyncio.create_task(self._reindex_logged(actor))
        self._reindexing = task
        return True

    async def _reindex_logged(self, actor: User | None) -> None:
        try:
            await self.reindex(actor)
        except Exception:
            log.exception("search_reindex_failed")

    async def status(self, actor: User | None) -> IndexStatus:
        check_admin(actor, "see the search index's status")
        async with self.d.store.read() as tx:
            documents = await self.index.documents(tx)
            counts = await tx.job_counts()
            last = await tx.get_meta(LAST_INDEXED)
        waiting = {JobState.PENDING.value, JobState.QUEUED.value, JobState.RUNNING.value}
        pending = sum(
            n for (queue, state), n in counts.items() if queue == QUEUE and state in waiting
        )
        return IndexStatus(
            documents=documents,
            pending_jobs=pending,
            last_indexed_at=None if last is None else datetime.fromisoformat(last),
        )

    def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        """The index jobs of committed events: one per search_index_batch messages, in
        the events' order, the messages grouped by conversation in its payload; the id
        names the first and last event positions, so that reading the same events
        again makes the same jobs."""
        keys: dict[tuple[str, int], int] = {}
        for event in events:
            cid = event.conversation_id
            if cid is None or event.payload.get("kind") not in _INDEXED_KINDS:
                continue
            message = event.payload.get("message")
            seq = message.get("seq") if isinstance(message, dict) else None
            if isinstance(seq, int):
                keys.setdefault((str(cid), seq), event.position)
        ordered = list(keys.items())
        batch = self.limits.search_index_batch
        jobs: list[NewJob] = []
        for start in range(0, len(ordered), batch):
            chunk = ordered[start : start + batch]
            by_conversation: dict[str, list[int]] = {}
            for (conversation, seq), _position in chunk:
                by_conversation.setdefault(conversation, []).append(seq)
            first, last = chunk[0][1], chunk[-1][1]
            jobs.append(
                NewJob(
                    INDEX_JOB,
                    {"messages": {c: sorted(s) for c, s in by_conversation.items()}},
                    job_id=f"{INDEX_JOB}:{first}:{last}:{len(chunk)}",
                )
            )
        return jobs


def _newest_cursor(hit: Hit) -> str:
    return encode_cursor({"o": "n", "t": hit.created_at_us, "c": hit.conversation_id, "s": hit.seq})


def _fingerprint(message: Message) -> tuple[object, ...]:
    """What a message's document is made of (doc_of): equal fingerprints, equal docs."""
    return (
        message.id,
        message.sender_id,
        message.created_at,
        message.body,
        message.deleted,
        message.mentions,
        tuple(f.name for f in message.attachments),
    )


Prepared = dict[tuple[str, int], tuple[tuple[object, ...], SearchDoc]]


def _prepare(found: Mapping[tuple[str, int], Message]) -> Prepared:
    """The documents of these messages, made ahead of the write transaction."""
    return {
        key: (_fingerprint(m), doc_of(m)) for key, m in found.items() if not m.deleted
    }


def _split(
    found: Mapping[tuple[str, int], Message],
    keys: Sequence[tuple[str, int]],
    prepared: Prepared | None = None,
) -> tuple[list[SearchDoc], list[tuple[str, int]]]:
    """The documents to write and the keys to remove, for the messages as `found`
    now; a document `prepared` from the same message as it is now is used as made."""
    docs: list[SearchDoc] = []
    gone: list[tuple[str, int]] = []
    for key in dict.fromkeys(keys):
        message = found.get(key)
        if message is None or message.deleted:
            gone.append(key)
            continue
        ready = None if prepared is None else prepared.get(key)
        if ready is not None and ready[0] == _fingerprint(message):
            docs.append(ready[1])
        else:  # changed since it was prepared (or never was)
            docs.append(doc_of(message))
    return docs, gone


async def _messages_of(
    tx: Tx, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], Message]:
    """The messages of these keys. An index job's keys are mostly runs of consecutive
    seqs of a few conversations (what was sent since the last job): those are read as
    seq ranges (one index range per conversation, no per-key clause to build); scattered
    ones by key."""
    by_conversation: dict[str, list[int]] = {}
    for cid, seq in keys:
        by_conversation.setdefault(cid, []).append(seq)
    found: dict[tuple[str, int], Message] = {}
    scattered: list[tuple[str, int]] = []
    for cid, seqs in by_conversation.items():
        low, high = min(seqs), max(seqs)
        if high - low + 1 <= 2 * len(seqs) + 8:
            page = await _page_of(tx, cid, low - 1, high)
            wanted = set(seqs)
            found.update((k, m) for k, m in page.items() if k[1] in wanted)
        else:
            scattered += [(cid, seq) for seq in seqs]
    if scattered:
        found.update(await tx.messages_by_keys(scattered))
    return found


async def _page_of(tx: Tx, cid: str, after: int, upto: int) -> dict[tuple[str, int], Message]:
    """The messages after..upto of one conversation, by key (reindex)."""
    page = await tx.list_messages(
        cid, before_seq=None, after_seq=after, limit=upto - after, max_seq=upto
    )
    return {(str(m.conversation_id), m.seq): m for m in page.messages}


async def _all_conversations(tx: Tx) -> list[tuple[str, int]]:
    """(id, last_seq) of every conversation."""
    found: list[tuple[str, int]] = []
    page = 500
    while True:
        convs, _total = await tx.all_conversations(
            query="", kind=None, archived=None, limit=page, offset=len(found)
        )
        found += [(c.id, c.last_seq) for c in convs]
        if len(convs) < page:
            return found


class _Consumer:
    """The event consumer "search" (JobService.on_events): always on."""

    def __init__(self, service: SearchService) -> None:
        self._service = service

    def active(self) -> bool:
        return True

    async def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        return self._service.jobs_for(events)
