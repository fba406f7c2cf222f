"""``tidings bench search``: search at scale, measured, and every hit checked.

1. **Corpus** (bench/searchgen.py): ``--messages`` messages (default 1,000,000) of
   Chinese, English and mixed chat text with a known vocabulary, in
   ``--conversations`` conversations (default 1,000) of varied sizes among ``--users``
   accounts, some of whose members leave after a given seq.
2. **Load**, before the server starts, into a fresh database (SQLite in a temporary data
   directory, or a new PostgreSQL database with ``--backend postgres``), through the
   store and services in-process: the owner, the accounts and the conversations by
   their services; the messages in batches of ``--batch`` through the send path's own
   store calls (``append_messages`` and the ``message`` events of an ``EventBatch``: the
   rows a send writes, without its checks and group commit); members leave by
   ``ConversationService.remove_member`` when their conversation reaches their
   ``left_seq``. After every message, their senders edit or recall some of them
   (``--changes``, half each) through ``MessageService``. The members' ranges in the
   database are then checked against the generator's.
3. **Indexing**: with ``--index worker`` (the default) the search consumer's cursor is
   put before the first loaded message, so that the spawned server's worker turns the
   million ``message`` events into ``search.index`` jobs and runs them, as it would have
   while they were sent; the rate is the messages indexed per second from the server's
   start until every message has its document. ``--index reindex`` times
   ``SearchService.reindex`` in-process instead (the rebuild of ``tidings search
   reindex``). Target: >= 5,000 messages/s.
4. **Queries**: ``--queries`` queries (default 1,000), each as a member of some
   conversations, one at a time through ``GET /api/v1/search`` on the spawned server
   (``rate_search_per_user`` off): incident ids, addresses and project code names with
   known answers, common Chinese, English and mixed words, some within one
   conversation, some with two words or a date filter. The first page of each is timed
   (targets: p50 <= 10 ms, p99 <= 50 ms); for a query whose answer is known and small
   every page is read, and its recall is the share of the messages containing the term
   that it found. **Every hit** of every page is checked against the caller's
   membership ranges from the generator (``violations``: must be 0), and against the
   query's conversation when it names one; no hit may be a recalled message, nor an
   edited one found by a term only its old text had.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import random
import secrets
import shutil
import tempfile
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from tidings.bench import procstat
from tidings.bench.runner import Progress
from tidings.bench.searchgen import PROBE_WORDS, ConvSpec, Corpus, Generated
from tidings.bench.server import SpawnedServer, spawn_server

JSON = dict[str, Any]
SEARCH_CONSUMER = "search"
"""The event consumer of the search index (SEARCH.md: ``JobService.on_events``)."""
SEARCH_JOB = "search.index"
SPAN = timedelta(days=300)
"""The messages' times: spread over the 300 days before the load."""
RECALL_MAX = 200
STATE_FILE = "bench-state.pickle"
"""What --keep leaves beside the data directory for --reuse: the corpus and the load's ids."""
"""A known-answer query is read to its last page when at most this many are expected."""
PAGES_MAX = 20

TARGET_INDEX_PER_S = 5_000
TARGET_P50_MS = 10.0
TARGET_P99_MS = 50.0


@dataclass
class SearchOptions:
    messages: int = 1_000_000
    conversations: int = 1_000
    queries: int = 1_000
    users: int = 500
    backend: str = "sqlite"
    """sqlite, or postgres (a new database on ``postgres_url``, Redis for the bus)."""
    spawn: bool = True
    seed: int = 16
    changes: int | None = None
    """Messages edited or recalled after the load (half each; default: one in 1,000,
    at least 4)."""
    batch: int = 5_000
    """Messages per write transaction of the load."""
    index: str = "worker"
    """worker: the spawned server's worker indexes the loaded events; reindex:
    SearchService.reindex in-process, before the server starts."""
    index_timeout: float = 3600.0
    page_size: int = 50
    postgres_url: str = field(
        default_factory=lambda: os.environ.get(
            "TIDINGS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
    )
    redis_url: str = field(
        default_factory=lambda: os.environ.get("TIDINGS_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    )
    load_only: bool = False
    """Stop after the load and its membership check (no server, no index, no queries)."""
    keep: bool = False
    """Keep the data directory (and PostgreSQL database) afterwards."""
    reuse: Path | None = None
    """A directory a run with ``keep`` left (its ``kept``): no load, the corpus and the
    load's ids read back from it, its database queried again (implies ``keep``)."""
    progress: bool = True
    serve_args: list[str] = field(default_factory=list)


def spawn_env() -> dict[str, str]:
    """Settings of the spawned server: the bench's queries are not rate-limited."""
    return {"TIDINGS_RATE_SEARCH_PER_USER": "0"}


def _loader_settings(opts: SearchOptions, data_dir: Path, db_url: str | None) -> dict[str, object]:
    return {
        "data_dir": data_dir,
        "database_url": db_url,
        "admin_username": "admin",
        "rate_conversation_create_per_hour": 0,
        "rate_membership_per_user": 0,
        "rate_login_per_user": 0,
        "rate_login_per_address": 0,
        "rate_edit_per_user": 0,
        # the loaded messages are up to 300 days old; their senders edit some of them
        "edit_window_seconds": int(SPAN.total_seconds()) + 86_400,
        # the load's commits need not wait for the disk (the server has its own default)
        "sqlite_synchronous": "NORMAL",
    }


# --- the bits that name the search side (SEARCH.md; adapt here at merge) -------------


async def reindex(container: Any, progress: Callable[[int, int], None] | None) -> int:
    """Rebuild the index in-process: ``SearchService.reindex`` (the contract)."""
    search = container.services.search
    return int(await search.reindex(None, progress=progress))


async def index_state(store: Any) -> tuple[int, int, int]:
    """(documents in the index, search jobs not finished, the consumer's cursor), read
    from the database the server writes."""
    from sqlalchemy import text

    async with store.read() as tx:
        docs = (await tx.conn.execute(text("SELECT count(*) FROM search_docs"))).scalar()
        open_jobs = (
            await tx.conn.execute(
                text(
                    "SELECT count(*) FROM jobs WHERE kind = :kind "
                    "AND state IN ('pending', 'queued', 'running')"
                ),
                {"kind": SEARCH_JOB},
            )
        ).scalar()
        cursors = await tx.job_cursors()
    return int(docs or 0), int(open_jobs or 0), int(cursors.get(SEARCH_CONSUMER, -1))


# --- progress ----------------------------------------------------------------------


# --- the load ----------------------------------------------------------------------


@dataclass
class Loaded:
    user_ids: list[str]
    usernames: list[str]
    conv_ids: list[str]
    head_before_messages: int
    head_after_messages: int
    password: str
    figures: JSON

    @property
    def documents(self) -> int:
        """The documents a complete index holds: every message not recalled."""
        return int(self.figures["messages_loaded"]) - int(self.figures.get("recalled", 0))


async def load(container: Any, corpus: Corpus, opts: SearchOptions, bar: Progress) -> Loaded:
    """The owner, the accounts, the conversations and the messages (see the module
    docstring); returns their ids and the load's figures."""
    from tidings.app.server import bootstrap
    from tidings.core.events import MessageSent
    from tidings.core.models import ConversationId, ConversationKind, Message, MessageId
    from tidings.services.events import EventBatch

    services = container.services
    store = container.store
    ids = container.deps.ids
    password = "bench-" + secrets.token_urlsafe(16)
    figures: JSON = {}
    await bootstrap(container)

    t0 = time.perf_counter()
    bar.stage("accounts", corpus.users)
    names = [f"sb{i}" for i in range(corpus.users)]
    users: list[Any] = [None] * corpus.users
    sem = asyncio.Semaphore(8)
    made = 0

    async def one_user(i: int) -> None:
        nonlocal made
        async with sem:
            users[i] = await services.users.create(None, names[i], password, f"Bench {i}")
        made += 1
        bar.update(made)

    await asyncio.gather(*(one_user(i) for i in range(corpus.users)))
    figures["accounts_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    bar.stage("conversations", len(corpus.convs))
    conv_ids: list[str] = [""] * len(corpus.convs)

    async def one_conversation(spec: ConvSpec) -> None:
        creator = users[spec.creator]
        others = [users[m.user].id for m in spec.members if m.user != spec.creator]
        kind = ConversationKind.DIRECT if spec.kind == "direct" else ConversationKind.GROUP
        name = None if kind is ConversationKind.DIRECT else f"bench {spec.index}"
        async with sem:
            conv, new = await services.conversations.create(creator, kind, others, name)
        if not new:
            raise RuntimeError(f"conversation {spec.index} was not new")
        conv_ids[spec.index] = str(conv.id)
        bar.update(sum(1 for c in conv_ids if c))

    await asyncio.gather(*(one_conversation(spec) for spec in corpus.convs))
    figures["conversations_s"] = round(time.perf_counter() - t0, 2)

    async with store.read() as tx:
        head = await tx.head_position()
    if opts.index == "worker":
        # The consumer would start at the head when the server first sees it (no
        # backfill): put it before the messages, as if it had followed them as sent.
        async with store.write() as tx:
            await tx.move_job_cursor(SEARCH_CONSUMER, max(head, 0))
            if head == 0:  # move_job_cursor never moves back: 0 needs the row itself
                await tx.move_job_cursor(SEARCH_CONSUMER, 0)

    leaves: dict[tuple[int, int], list[int]] = {}
    for spec in corpus.convs:
        for left_seq, user in spec.leaves():
            leaves.setdefault((spec.index, left_seq), []).append(user)
    start = datetime.now(UTC) - SPAN - timedelta(hours=1)
    pending: list[Any] = []
    loaded = 0

    async def flush() -> None:
        nonlocal loaded
        if not pending:
            return
        now = datetime.now(UTC)
        async with store.write() as tx:
            events = EventBatch(tx, container.bus, now)
            last: dict[str, int] = {}
            for m in pending:
                last[m.conversation_id] = m.seq
                events.add(MessageSent(m, now))
            await tx.append_messages(pending, last, now)
            await events.flush()
        loaded += len(pending)
        pending.clear()
        bar.update(loaded)

    bar.stage("messages", corpus.total_messages)
    t0 = time.perf_counter()
    # Conversations are read side by side: one stops where a member leaves, until the
    # batch holding that seq is committed and the member has left; the others fill the
    # batch meanwhile (so a leave costs no small batch).
    wanted = opts.changes if opts.changes is not None else max(4, corpus.total_messages // 1000)
    changes: list[tuple[Generated, str]] = []
    queue = deque(corpus.convs)
    streams = {spec.index: corpus.messages_of(spec) for spec in corpus.convs}
    corpus.occurrences = {}
    while queue:
        round_leaves: list[tuple[int, int]] = []
        stopped: list[ConvSpec] = []
        while queue and len(pending) < opts.batch:
            spec = queue.popleft()
            cid = conv_ids[spec.index]
            stream = streams[spec.index]
            finished = True
            for g in stream:
                pending.append(
                    Message(
                        id=MessageId(ids.new_id()),
                        conversation_id=ConversationId(cid),
                        seq=g.seq,
                        client_msg_id=f"sb-{g.conv}-{g.seq}",
                        sender_id=users[g.sender].id,
                        body=g.body,
                        reply_to_seq=None,
                        mentions=(),
                        created_at=start + SPAN * g.at,
                    )
                )
                change = corpus.change_of(g, wanted)
                if change is not None:
                    changes.append((g, change))
                leavers = leaves.get((g.conv, g.seq))
                if leavers or len(pending) >= opts.batch:
                    round_leaves += [(spec.index, u) for u in leavers or ()]
                    finished = False
                    break
            if not finished:
                stopped.append(spec)
        await flush()

        async def leave(ci: int, u: int) -> None:
            async with sem:
                await services.conversations.remove_member(users[u], conv_ids[ci], users[u].id)

        await asyncio.gather(*(leave(ci, u) for ci, u in round_leaves))
        queue.extendleft(reversed(stopped))
    await flush()
    load_s = time.perf_counter() - t0
    figures.update(
        messages_loaded=loaded,
        load_s=round(load_s, 2),
        load_messages_per_s=round(loaded / max(load_s, 1e-9)),
        members_left=sum(len(v) for v in leaves.values()),
    )
    # After every message: their senders edit or recall some (the real service calls,
    # so the index follows message_edited and message_deleted events too).
    bar.stage("edits and recalls", len(changes))

    async def apply(g: Generated, kind: str) -> None:
        sender, cid = users[g.sender], conv_ids[g.conv]
        async with sem:
            if kind == "recall":
                await services.messages.recall(sender, cid, g.seq)
                corpus.recall(g)
            else:
                await services.messages.edit(sender, cid, g.seq, corpus.edit(g))

    await asyncio.gather(*(apply(g, kind) for g, kind in changes))
    figures.update(recalled=len(corpus.recalled), edited=len(corpus.edited))
    figures["membership_mismatches"] = await _check_members(store, corpus, conv_ids, users)
    async with store.read() as tx:
        head_after = await tx.head_position()
    return Loaded(
        user_ids=[str(u.id) for u in users],
        usernames=names,
        conv_ids=conv_ids,
        head_before_messages=head,
        head_after_messages=head_after,
        password=password,
        figures=figures,
    )


async def _check_members(store: Any, corpus: Corpus, conv_ids: list[str], users: list[Any]) -> int:
    """Members whose row in the database disagrees with the generator's range."""
    from sqlalchemy import select

    from tidings.store.sql import schema

    index = {str(u.id): i for i, u in enumerate(users)}
    members = schema.members
    wrong = 0
    async with store.read() as tx:
        for spec, cid in zip(corpus.convs, conv_ids, strict=True):
            found = await tx.conn.execute(
                select(members.c.user_id, members.c.left_seq).where(
                    members.c.conversation_id == cid
                )
            )
            rows = {index.get(str(r.user_id)): r.left_seq for r in found}
            for m in spec.members:
                if m.user not in rows or rows[m.user] != m.left_seq:
                    wrong += 1
            wrong += max(0, len(rows) - len(spec.members))
    return wrong


async def login_all(container: Any, loaded: Loaded, wanted: set[int]) -> dict[int, str]:
    """A token for each user that asks queries (an in-process login: the session row
    the server reads)."""
    tokens: dict[int, str] = {}
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with sem:
            token, _session = await container.services.auth.login(
                loaded.usernames[i], loaded.password, "bench search"
            )
        tokens[i] = token

    await asyncio.gather(*(one(i) for i in sorted(wanted)))
    return tokens


# --- the queries ---------------------------------------------------------------------


@dataclass
class Query:
    user: int
    q: str
    kind: str
    term: str | None = None
    """The one term whose literal occurrences are the known answer (recall)."""
    conv: int | None = None
    expected: int | None = None
    """Messages the caller may read that contain ``term`` (None: not known)."""


def make_queries(corpus: Corpus, count: int, seed: int) -> list[Query]:
    """``count`` queries, made the same way from the same seed (see the module
    docstring for the mix)."""
    rng = random.Random(seed * 7919 + 1)
    markers = [  # (term, the conversations where some message still says it)
        (term, cis)
        for kind in ("incident", "address", "code")
        for term in corpus.markers[kind]
        if (
            cis := sorted(
                ci for ci, seqs in corpus.occurrences.get(term.casefold(), {}).items() if seqs
            )
        )
    ]
    members = [u for u in range(corpus.users) if corpus.conversations_of(u)]
    out: list[Query] = []
    changed = sorted([*corpus.recalled, *corpus.edited])
    for _ in range(count):
        roll = rng.random()
        if roll < 0.05 and changed:
            out.append(_changed_query(corpus, rng, *rng.choice(changed)))
        elif roll < 0.4 and markers:
            term, cis = rng.choice(markers)
            ci = rng.choice(cis)
            seq = rng.choice(list(corpus.occurrences[term.casefold()][ci]))
            spec = corpus.convs[ci]
            seers = [
                m.user for m in spec.members if m.left_seq is None or m.left_seq >= seq
            ]
            user = rng.choice(seers)
            q = f'"{term}"' if rng.random() < 0.25 else term
            out.append(Query(user, q, "marker", term, None, corpus.expected(term, user)))
        elif roll < 0.7:
            user = rng.choice(members)
            word = rng.choice(PROBE_WORDS)
            out.append(Query(user, word, "word", word, None, corpus.expected(word, user)))
        elif roll < 0.85:
            user = rng.choice(members)
            spec = rng.choice(corpus.conversations_of(user))
            word = rng.choice(PROBE_WORDS)
            expected = corpus.expected(word, user, spec.index)
            out.append(Query(user, word, "in_conversation", word, spec.index, expected))
        elif roll < 0.95:
            user = rng.choice(members)
            a, b = rng.sample(PROBE_WORDS, 2)
            out.append(Query(user, f"{a} {b}", "two_words"))
        else:
            user = rng.choice(members)
            day = (datetime.now(UTC) - timedelta(days=rng.randint(10, 290))).date()
            word = rng.choice(PROBE_WORDS)
            op = rng.choice(("after", "before"))
            out.append(Query(user, f"{word} {op}:{day.isoformat()}", "dated"))
    return out


def _changed_query(corpus: Corpus, rng: random.Random, ci: int, seq: int) -> Query:
    """A query for an edited message's new revision marker, or for a marker the
    message no longer says (edited or recalled: it must not be found by it), asked by
    someone who may read it."""
    spec = corpus.convs[ci]
    user = rng.choice([m.user for m in spec.members if m.left_seq is None or m.left_seq >= seq])
    new_body = corpus.edited.get((ci, seq))
    if new_body is not None and rng.random() < 0.5:
        term = new_body.rsplit(" ", 1)[-1]  # its REV- marker
        return Query(user, term, "changed", term, None, corpus.expected(term, user))
    old = corpus.old_markers.get((ci, seq), [])
    term = old[0] if old else "INC-1000"
    return Query(user, term, "changed", term, None, corpus.expected(term, user))


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class QueryStats:
    latencies: list[float] = field(default_factory=list)
    pages: int = 0
    hits: int = 0
    violations: int = 0
    wrong_conversation: int = 0
    duplicate_hits: int = 0
    errors: int = 0
    queries_with_hits: int = 0
    expected: int = 0
    found: int = 0
    recall_queries: int = 0
    incomplete_recall_queries: int = 0
    hits_without_term: int = 0
    recalled_hits: int = 0
    stale_hits: int = 0
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    error_texts: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_texts) < 10:
            self.error_texts.append(text)


async def run_queries(
    url: str,
    corpus: Corpus,
    loaded: Loaded,
    tokens: dict[int, str],
    queries: list[Query],
    opts: SearchOptions,
    bar: Progress,
) -> QueryStats:
    """Every query, one at a time (see the module docstring)."""
    stats = QueryStats()
    conv_index = {cid: i for i, cid in enumerate(loaded.conv_ids)}
    bar.stage("queries", len(queries))
    async with httpx.AsyncClient(
        base_url=url.rstrip("/") + "/api/v1", trust_env=False, timeout=60.0
    ) as http:
        for n, query in enumerate(queries):
            await _one_query(http, corpus, loaded, conv_index, tokens, query, opts, stats)
            bar.update(n + 1)
    return stats


async def _one_query(
    http: httpx.AsyncClient,
    corpus: Corpus,
    loaded: Loaded,
    conv_index: dict[str, int],
    tokens: dict[int, str],
    query: Query,
    opts: SearchOptions,
    stats: QueryStats,
) -> None:
    params: dict[str, str | int] = {"q": query.q, "limit": opts.page_size}
    if query.conv is not None:
        params["conversation_id"] = loaded.conv_ids[query.conv]
    headers = {"authorization": f"Bearer {tokens[query.user]}"}
    read_all = query.expected is not None and query.expected <= RECALL_MAX
    seen: set[tuple[str, int]] = set()
    term = _norm(query.term) if query.term else None
    found = 0
    cursor: str | None = None
    for page in range(PAGES_MAX):
        if cursor is not None:
            params["cursor"] = cursor
        t0 = time.perf_counter()
        response = await http.get("/search", params=params, headers=headers)
        elapsed = time.perf_counter() - t0
        stats.pages += 1
        if response.status_code != 200:
            stats.error(f"{query.q!r}: {response.status_code} {response.text[:200]}")
            return
        if page == 0:
            stats.latencies.append(elapsed)
            stats.by_kind.setdefault(query.kind, []).append(elapsed)
        data = orjson.loads(response.content)
        results = data.get("results") or []
        if page == 0 and results:
            stats.queries_with_hits += 1
        for result in results:
            message = result.get("message") or {}
            cid = str(message.get("conversation_id"))
            seq = int(message.get("seq") or 0)
            stats.hits += 1
            if (cid, seq) in seen:
                stats.duplicate_hits += 1
                continue
            seen.add((cid, seq))
            ci = conv_index.get(cid)
            spec: ConvSpec | None = None if ci is None else corpus.convs[ci]
            if spec is None or not (1 <= seq <= spec.messages):
                stats.violations += 1  # no message of the corpus, so of nobody's
                continue
            if not corpus.visible(query.user, spec.index, seq):
                stats.violations += 1
            if query.conv is not None and spec.index != query.conv:
                stats.wrong_conversation += 1
            if (spec.index, seq) in corpus.recalled:
                stats.recalled_hits += 1
            new_body = corpus.edited.get((spec.index, seq))
            if term is not None and new_body is not None and term not in _norm(new_body):
                stats.stale_hits += 1  # found by the text it had before its edit
            if term is not None:
                if term in _norm(str(message.get("body") or "")):
                    found += 1
                else:
                    stats.hits_without_term += 1
        cursor = data.get("next_cursor")
        if not read_all or not cursor:
            break
    if read_all and query.expected:
        stats.recall_queries += 1
        stats.expected += query.expected
        stats.found += min(found, query.expected)
        if found < query.expected:
            stats.incomplete_recall_queries += 1


# --- the run ---------------------------------------------------------------------------


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


async def run_search(opts: SearchOptions | None = None) -> JSON:
    """Load, index, query, check (the module docstring); the figures as one dict."""
    from tidings.app.container import Container
    from tidings.app.settings import Settings
    from tidings.services.passwords import Passwords
    from tidings.store import migrations
    from tidings.store.sql.engines.postgres import execute_outside_transaction

    opts = opts or SearchOptions()
    if not opts.spawn:
        raise ValueError(
            "bench search loads its corpus straight into a new database: it needs --spawn"
        )
    if opts.backend not in ("sqlite", "postgres"):
        raise ValueError("backend: sqlite or postgres")
    if opts.index not in ("worker", "reindex"):
        raise ValueError("index: worker or reindex")
    started = time.time()
    kept: dict[str, Any] | None = None
    if opts.reuse is not None:
        opts.keep = True
        root = Path(opts.reuse)
        if root.name == "data":
            root = root.parent
        state_path = root / STATE_FILE
        if not state_path.is_file():
            raise ValueError(f"--reuse: {state_path} not found (made by a run with --keep)")
        kept = pickle.loads(state_path.read_bytes())
        if kept["backend"] != opts.backend:
            raise ValueError(f"--reuse: that directory was loaded with {kept['backend']}")
        data_dir = root / "data"
    else:
        root = Path(tempfile.mkdtemp(prefix="tidings-bench-search-"))
        data_dir = root / "data"
        data_dir.mkdir()
    env = spawn_env()
    db_url: str | None = None
    db_name = f"tidings_bench_{secrets.token_hex(6)}" if kept is None else kept["db_name"]
    if opts.backend == "postgres":
        if kept is None:
            await execute_outside_transaction(opts.postgres_url, f"CREATE DATABASE {db_name}")
        db_url = opts.postgres_url.rsplit("/", 1)[0] + "/" + db_name
        env.update(
            TIDINGS_DATABASE_URL=db_url,
            TIDINGS_REDIS_URL=opts.redis_url,
            TIDINGS_REDIS_PREFIX=f"tidings-{db_name}",
        )
    result: JSON = {"scenario": "search", "backend": opts.backend, "cpus": os.cpu_count()}
    bar = Progress(opts.progress, "", None)  # the stages name themselves
    bar.__enter__()
    container: Any = None
    server: SpawnedServer | None = None
    try:
        settings = Settings.model_validate(_loader_settings(opts, data_dir, db_url))
        # the server's database named, not defaulted (a TIDINGS_DATABASE_URL of the
        # caller's environment would otherwise win in the spawned server)
        env["TIDINGS_DATABASE_URL"] = settings.db_url
        await asyncio.to_thread(migrations.upgrade, settings.db_url)
        container = Container(
            settings, passwords=Passwords(time_cost=1, memory_kib=8, parallelism=1), plugins=[]
        )
        t0 = time.perf_counter()
        if kept is not None:
            corpus, loaded = kept["corpus"], kept["loaded"]
            result.update(loaded.figures, reused=str(root))
        else:
            corpus = Corpus(opts.seed, opts.users, opts.conversations, opts.messages)
            loaded = await load(container, corpus, opts, bar)
            result.update(loaded.figures)
            if opts.keep:
                state = {"backend": opts.backend, "db_name": db_name, "corpus": corpus,
                         "loaded": loaded}
                (root / STATE_FILE).write_bytes(pickle.dumps(state))
        result["setup_s"] = round(time.perf_counter() - t0, 2)
        if opts.load_only:
            return _finish(result, opts, started)
        queries = make_queries(corpus, opts.queries, opts.seed)
        tokens = await login_all(container, loaded, {q.user for q in queries})

        if opts.index == "reindex":
            bar.stage("reindex", loaded.figures["messages_loaded"])
            t0 = time.perf_counter()
            indexed = await reindex(container, lambda done, _total: bar.update(done))
            index_s = time.perf_counter() - t0
            result.update(index_mode="reindex", indexed=indexed)
        spawn_t0 = time.perf_counter()
        server = await spawn_server(
            extra_args=opts.serve_args, extra_env=env, root=root
        )
        result["server_start_s"] = round(time.perf_counter() - spawn_t0, 2)
        if opts.index == "worker":
            index_s, indexed = await _wait_indexed(
                container.store, server, loaded, opts, bar
            )
            docs, _jobs, _cursor = await index_state(container.store)
            result.update(index_mode="worker", indexed=indexed, index_documents=docs)
        total = loaded.documents
        rate = indexed / max(index_s, 1e-9)
        result.update(
            index_s=round(index_s, 2),
            index_messages_per_s=round(rate),
            index_complete=result.get("index_documents", indexed) >= total,
            index_target_met=rate >= TARGET_INDEX_PER_S,
        )
        before = procstat.sample(server.pid)
        t0 = time.perf_counter()
        stats = await run_queries(server.url, corpus, loaded, tokens, queries, opts, bar)
        query_s = time.perf_counter() - t0
        after = procstat.sample(server.pid)
        p50 = _percentile(stats.latencies, 0.5)
        p99 = _percentile(stats.latencies, 0.99)
        result.update(
            queries=len(queries),
            query_users=len(tokens),
            queries_s=round(query_s, 2),
            query_p50_ms=_ms(p50),
            query_p99_ms=_ms(p99),
            query_max_ms=_ms(max(stats.latencies, default=None)),
            query_p50_target_met=p50 is not None and p50 * 1000 <= TARGET_P50_MS,
            query_p99_target_met=p99 is not None and p99 * 1000 <= TARGET_P99_MS,
            query_p50_ms_by_kind={
                k: _ms(_percentile(v, 0.5)) for k, v in sorted(stats.by_kind.items())
            },
            query_p99_ms_by_kind={
                k: _ms(_percentile(v, 0.99)) for k, v in sorted(stats.by_kind.items())
            },
            server_cpu_ms_per_query=(
                round((after.cpu_seconds - before.cpu_seconds) * 1000 / max(1, len(queries)), 2)
                if before is not None and after is not None
                else None
            ),
            pages=stats.pages,
            hits=stats.hits,
            queries_with_hits=stats.queries_with_hits,
            violations=stats.violations,
            wrong_conversation=stats.wrong_conversation,
            duplicate_hits=stats.duplicate_hits,
            query_errors=stats.errors,
            recall_queries=stats.recall_queries,
            recall_expected=stats.expected,
            recall_found=stats.found,
            recall=round(stats.found / stats.expected, 4) if stats.expected else None,
            incomplete_recall_queries=stats.incomplete_recall_queries,
            hits_without_term=stats.hits_without_term,
            recalled_hits=stats.recalled_hits,
            stale_hits=stats.stale_hits,
            errors=stats.error_texts,
        )
        if after is not None:
            result["server_rss_mib"] = round(after.rss_bytes / (1024 * 1024), 1)
    finally:
        bar.__exit__(None, None, None)
        if server is not None:
            if opts.keep:
                server.process.terminate()
                await asyncio.to_thread(server.process.wait, 15)
            else:
                await asyncio.to_thread(server.stop)
        if container is not None:
            await container.close()
        if opts.backend == "postgres" and not opts.keep:
            await execute_outside_transaction(
                opts.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"
            )
        if opts.keep:
            result["kept"] = str(data_dir) if db_url is None else f"{data_dir} {db_url}"
        else:
            shutil.rmtree(root, ignore_errors=True)
    return _finish(result, opts, started)


def _finish(result: JSON, opts: SearchOptions, started: float) -> JSON:
    """The checks' verdict, the start time and the options, after the figures."""
    checks = [result.get("membership_mismatches") == 0]
    if not opts.load_only:
        checks += [
            result.get("violations") == 0,
            result.get("wrong_conversation") == 0,
            result.get("duplicate_hits") == 0,
            result.get("recalled_hits") == 0,
            result.get("stale_hits") == 0,
            result.get("query_errors") == 0,
            bool(result.get("index_complete")),
        ]
    result["ok"] = all(checks)
    result["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    result["options"] = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in asdict(opts).items()
        if k not in ("progress", "serve_args")
    }
    return result


async def _wait_indexed(
    store: Any, server: SpawnedServer, loaded: Loaded, opts: SearchOptions, bar: Progress
) -> tuple[float, int]:
    """Wait until the worker has indexed every loaded message (or has nothing left to
    do, or ``index_timeout`` passed). Returns the seconds from the server being up to
    then and the documents indexed meanwhile (those indexed while it was starting are
    left out of both: the rate is the worker's steady one)."""
    total = loaded.documents
    bar.stage("indexing (worker)", total)
    t0 = time.perf_counter()
    first, _jobs, _cursor = await index_state(store)
    docs, idle_since = first, time.perf_counter()
    while time.perf_counter() - t0 < opts.index_timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited while indexing:\n{server.log_tail()}")
        await asyncio.sleep(0.5)
        now_docs, open_jobs, cursor = await index_state(store)
        bar.update(now_docs)
        if now_docs != docs:
            docs, idle_since = now_docs, time.perf_counter()
        if docs >= total:
            break
        done = cursor >= loaded.head_after_messages and open_jobs == 0
        if done and time.perf_counter() - idle_since > 5:
            break  # nothing more will come
    elapsed = (idle_since if docs < total else time.perf_counter()) - t0
    return elapsed, docs - first
