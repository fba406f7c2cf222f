"""The load generator: scenarios that speak the real protocol and check every delivery.

Each scenario sets up its users and conversations over REST (as the admin), opens
WebSocket connections (raw ``websockets`` + orjson, no SDK layers, so the generator
stays cheap), drives traffic, then checks each connection's stream:

- **lost**: a message acknowledged to its sender that a connection of a member never got;
- **duplicated**: the same message (or event position) delivered twice to one
  connection;
- **out of order**: a message whose ``seq`` is not above the last one that connection got
  for the conversation.

Only the traffic phase is measured (setup, password hashing included, is not):
latency from send start to receipt by another member, deliveries per second, the
server's CPU seconds (``/proc/PID/stat``) and CPU-ms per 1,000 deliveries, its memory
(``/proc/PID/status``), and the generator's own CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tidings.bench import files as bench_files
from tidings.bench import procstat
from tidings.bench.server import SpawnedServer, spawn_server
from tidings.protocol.session import (
    Answered,
    ClientSession,
    Delivered,
    Dropped,
    Outcome,
    Ready,
    Refused,
)

SCENARIOS = ("latency", "fanout", "connections", "soak", "files")

JSON = dict[str, Any]


@dataclass
class Options:
    """Everything a scenario can be told. Defaults are the issue's default sizes."""

    url: str | None = None
    """Server to load (``http://host:port``); ignored with ``spawn``."""
    server_pid: int | None = None
    """Server process to read CPU and memory from (automatic with ``spawn``)."""
    spawn: bool = False
    """Start a throw-away server on a temporary data directory."""
    admin_username: str = "admin"
    admin_password: str | None = None
    """Defaults to ``$TIDINGS_ADMIN_PASSWORD``."""
    # latency
    pairs: int = 50
    messages: int = 20
    # fanout
    members: int = 100
    senders: int = 10
    per_sender: int = 100
    in_flight: int = 10
    """Unacknowledged sends allowed per sender (fanout and soak)."""
    # connections
    connections: int = 2000
    distinct_users: bool = True
    """Connections: one account (and token) per connection, as after a node restart;
    off: spread over ``connection_users`` accounts."""
    connection_users: int = 100
    """Accounts the connections are spread over without ``distinct_users`` (each logs
    in once)."""
    hold: float = 5.0
    """Seconds to hold the connections open before checking they are all alive."""
    # soak
    duration: float = 60.0
    soak_users: int = 20
    rate: float = 100.0
    """Messages per second, all senders together."""
    reconnect_every: float = 5.0
    """Soak: drop a random connection and resume it with ``since`` this often (0: never)."""
    # files (bench/files.py)
    file_size_mib: int = 1024
    """The large file's size (0: no large file)."""
    images: int = 1000
    """Small images uploaded, each in a message (0: none)."""
    idle_sends: int = 200
    """Messages sent one at a time before the uploads: the idle latency."""
    upload_concurrency: int = 8
    thumbnail_timeout: float = 300.0
    """Give up waiting for the images' thumbnails after this long."""
    # common
    body_bytes: int = 64
    connect_concurrency: int = 100
    """Connections being opened at once (a reconnect storm is about this wide)."""
    drain_timeout: float = 15.0
    """How long to wait for missing deliveries once no more arrive."""
    compression: bool = False
    """Offer permessage-deflate (off by default: it costs CPU on both sides)."""
    progress: bool = True
    serve_args: list[str] = field(default_factory=list)
    """Extra arguments for ``tidings serve`` with ``spawn``."""


# ---------------------------------------------------------------------------- records


@dataclass
class Recorder:
    """Counters shared by every connection of a run."""

    sent_at: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    deliveries: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    other_events: int = 0
    send_errors: int = 0
    errors: list[str] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)
    """Message id -> conversation id of every acknowledged send."""
    last_delivery_at: float = 0.0
    close_codes: dict[int, int] = field(default_factory=dict)
    """Close code -> connections the server closed while they were being opened."""

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)


@dataclass
class Account:
    id: str
    username: str
    token: str


class Conn:
    """One raw WebSocket connection of one account, with delivery bookkeeping. The
    protocol's rules (resume position, duplicates, refs) are its ClientSession's."""

    __slots__ = (
        "account",
        "closed",
        "convs",
        "last_seq",
        "on_event",
        "opts",
        "pending",
        "reader",
        "rec",
        "seen",
        "session",
        "waiters",
        "ws",
    )

    def __init__(self, account: Account, rec: Recorder, opts: Options) -> None:
        self.account = account
        self.rec = rec
        self.opts = opts
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.pending: dict[str, asyncio.Future[JSON]] = {}
        self.session = ClientSession()
        self.seen: set[str] = set()
        self.last_seq: dict[str, int] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.convs: set[str] = set()
        self.closed = True
        self.on_event: Callable[[JSON, float], None] | None = None  # every event, also

    @property
    def position(self) -> str | None:
        """The last position received (or the first ready's): where a resume starts."""
        return self.session.since

    async def open(
        self,
        ws_url: str,
        *,
        since: str | None = None,
        timeout: float = 30.0,  # one deadline for connect + auth + ready
    ) -> None:
        """Connect, authenticate (resuming from the session's position, or ``since``
        for a new one) and wait for ``ready``."""
        ws = await connect(
            ws_url,
            proxy=None,
            compression="deflate" if self.opts.compression else None,
            open_timeout=timeout,
            ping_interval=None,
            max_size=None,
            max_queue=None,
            close_timeout=1,
        )
        self.ws = ws
        session = self.session
        if session.since is None and since is not None:
            session = self.session = ClientSession(since)
        session.connect(self.account.token)
        for text in session.frames_to_send():
            await ws.send(text)
        async with asyncio.timeout(timeout):
            while True:
                frame = orjson.loads(await ws.recv())
                outcome = session.receive(frame)
                if isinstance(outcome, Ready):
                    break
                if isinstance(outcome, Refused):
                    raise RuntimeError(f"auth refused: {frame.get('error')}")
                self._apply(outcome, frame, time.perf_counter())
        self.closed = False
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        loads = orjson.loads
        perf = time.perf_counter
        code: int | None = None
        try:
            while True:
                raw = await ws.recv()
                self._handle(loads(raw), perf())
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
        except Exception as exc:  # noqa: BLE001  # loop boundary: recorded, the run goes on
            self.rec.error(f"reader {self.account.username}: {exc!r}")
        finally:
            self.session.connection_lost(code)
            self.closed = True
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            self.pending.clear()

    def _handle(self, frame: JSON, now: float) -> None:
        self._apply(self.session.receive(frame), frame, now)

    def _apply(self, outcome: Outcome, frame: JSON, now: float) -> None:
        if isinstance(outcome, Delivered):
            event = frame["event"]
            if event.get("kind") == "message":
                self._on_message(event["message"], now)
            else:
                self.rec.other_events += 1
            if self.on_event is not None:
                self.on_event(event, now)
        elif isinstance(outcome, Answered):
            future = self.pending.pop(outcome.ref, None)
            if future is not None and not future.done():
                future.set_result(frame)
        elif isinstance(outcome, Dropped):
            self.rec.duplicates += 1  # a position this connection had already

    def _on_message(self, message: JSON, now: float) -> None:
        rec = self.rec
        mid = str(message["id"])
        if mid in self.seen:
            rec.duplicates += 1
            return
        self.seen.add(mid)
        cid = str(message["conversation_id"])
        seq = int(message["seq"])
        if seq <= self.last_seq.get(cid, 0):
            rec.out_of_order += 1
        else:
            self.last_seq[cid] = seq
        rec.deliveries += 1
        rec.last_delivery_at = now
        if message.get("sender_id") != self.account.id:
            cmid = message.get("client_msg_id")
            if cmid is not None:
                t0 = rec.sent_at.get(cmid)
                if t0 is not None:
                    rec.latencies.append(now - t0)
                waiter = self.waiters.pop(cmid, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)

    def expect(self, client_msg_id: str) -> asyncio.Future[float]:
        """A future resolved when this connection receives ``client_msg_id``."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[client_msg_id] = future
        return future

    async def request(self, frame: JSON, timeout: float = 30.0) -> JSON:
        """Send a frame with a fresh ``ref`` and wait for its ``ack`` or ``error``."""
        ws = self.ws
        ref = None if ws is None or self.closed else self.session.request(frame)
        if ws is None or ref is None:
            raise ConnectionError("not connected")
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self.pending[ref] = future
        for text in self.session.frames_to_send():
            await ws.send(text)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.pending.pop(ref, None)
            self.session.give_up(ref)
            raise

    async def send_message(
        self,
        cid: str,
        client_msg_id: str,
        body: str,
        *,
        final: bool = True,
        attachments: list[str] | None = None,
    ) -> JSON | None:
        """Send a message frame; return the stored message, or None.

        A failure is counted as a send error when ``final`` (no retry will follow).
        Latency counts from the first attempt of a ``client_msg_id``.
        """
        self.rec.sent_at.setdefault(client_msg_id, time.perf_counter())
        frame: JSON = {
            "type": "send",
            "conversation_id": cid,
            "client_msg_id": client_msg_id,
            "body": body,
        }
        if attachments:
            frame["attachments"] = attachments
        try:
            answer = await self.request(frame)
        except (TimeoutError, ConnectionError, ConnectionClosed) as exc:
            if final:
                self.rec.send_errors += 1
                self.rec.error(f"send {client_msg_id}: {exc!r}")
            return None
        if answer.get("type") != "ack":
            self.rec.send_errors += 1
            self.rec.error(f"send {client_msg_id}: {answer.get('error')}")
            return None
        message: JSON = answer["message"]
        self.rec.acked[str(message["id"])] = cid
        return message

    async def wait_open(self, timeout: float = 15.0) -> bool:
        """Wait until the connection is open again (after a resume); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.closed:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(TimeoutError, OSError, ConnectionClosed):
                await asyncio.wait_for(self.ws.close(), 2)
        if self.reader is not None:
            try:
                await asyncio.wait_for(self.reader, 2)
            except (TimeoutError, asyncio.CancelledError):
                self.reader.cancel()
        self.closed = True

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a network failure)."""
        if self.ws is not None:
            self.ws.transport.abort()


# ---------------------------------------------------------------------------- context


class Bench:
    """Setup helpers over REST, measurement, and the shared recorder of one run."""

    def __init__(self, url: str, opts: Options, pid: int | None) -> None:
        self.url = url.rstrip("/")
        self.ws_url = (
            self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/api/v1/ws"
        )
        self.opts = opts
        self.pid = pid
        self.rec = Recorder()
        self.run_id = secrets.token_hex(3)
        self.http = httpx.AsyncClient(
            base_url=self.url + "/api/v1",
            trust_env=False,
            timeout=60.0,
            limits=httpx.Limits(max_connections=32),
        )
        self.admin_token = ""
        self._password = "pw-" + secrets.token_urlsafe(10)
        self.body = "x" * max(0, opts.body_bytes)

    async def api(self, method: str, path: str, token: str, json: object = None) -> JSON:
        """One REST call; raise with the server's error on failure."""
        response = await self.http.request(
            method,
            path,
            content=orjson.dumps(json) if json is not None else None,
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        if not response.content:
            return {}
        data: JSON = orjson.loads(response.content)
        return data

    async def login(self, username: str, password: str) -> JSON:
        response = await self.http.post(
            "/auth/login",
            content=orjson.dumps({"username": username, "password": password, "device": "bench"}),
            headers={"content-type": "application/json"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"login {username}: {response.status_code} {response.text[:300]}")
        data: JSON = orjson.loads(response.content)
        return data

    async def setup_admin(self) -> None:
        password = self.opts.admin_password or os.environ.get("TIDINGS_ADMIN_PASSWORD")
        if not password:
            raise RuntimeError("admin password needed: --admin-password or TIDINGS_ADMIN_PASSWORD")
        self.admin_token = str((await self.login(self.opts.admin_username, password))["token"])

    async def create_accounts(
        self, count: int, tag: str, progress: Progress | None = None
    ) -> list[Account]:
        """Create ``count`` users as the admin and log each in once."""
        sem = asyncio.Semaphore(8)
        done = 0

        async def one(index: int) -> Account:
            username = f"b{self.run_id}{tag}{index}"
            async with sem:
                created = await self.api(
                    "POST",
                    "/users",
                    self.admin_token,
                    {"username": username, "password": self._password, "display_name": username},
                )
                user = created.get("user", created)
                session = await self.login(username, self._password)
            nonlocal done
            done += 1
            if progress is not None:
                progress.update(done)
            return Account(id=str(user["id"]), username=username, token=str(session["token"]))

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def create_token_accounts(
        self, count: int, tag: str, progress: Progress | None = None
    ) -> list[Account]:
        """Create ``count`` accounts that each have their own token, in one admin call
        apiece (``POST /bots``: no password to hash, no login), so that thousands are
        ready in seconds. Their tokens authenticate like any device session's."""
        sem = asyncio.Semaphore(32)
        done = 0

        async def one(index: int) -> Account:
            username = f"b{self.run_id}{tag}{index}"
            async with sem:
                created = await self.api("POST", "/bots", self.admin_token, {"username": username})
            nonlocal done
            done += 1
            if progress is not None:
                progress.update(done)
            user = created["user"]
            return Account(id=str(user["id"]), username=username, token=str(created["token"]))

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def create_conversation(
        self, creator: Account, kind: str, member_ids: list[str], name: str | None = None
    ) -> str:
        body: JSON = {"kind": kind, "member_ids": member_ids}
        if name is not None:
            body["name"] = name
        data = await self.api("POST", "/conversations", creator.token, body)
        return str(data.get("conversation", data)["id"])

    async def open_conns(
        self, accounts: Iterable[Account], on_open: Callable[[], None] | None = None
    ) -> tuple[list[Conn], int]:
        """Open one connection per account (repeat accounts for several); return (open, failed)."""
        sem = asyncio.Semaphore(self.opts.connect_concurrency)
        failures = 0

        async def one(account: Account) -> Conn | None:
            nonlocal failures
            conn = Conn(account, self.rec, self.opts)
            async with sem:
                try:
                    await conn.open(self.ws_url)
                except Exception as exc:  # noqa: BLE001  # one connection: recorded
                    failures += 1
                    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
                        codes = self.rec.close_codes
                        codes[exc.rcvd.code] = codes.get(exc.rcvd.code, 0) + 1
                    self.rec.error(f"connect {account.username}: {exc!r}")
                    return None
            if on_open is not None:
                on_open()
            return conn

        opened = await asyncio.gather(*(one(a) for a in accounts))
        return [c for c in opened if c is not None], failures

    def sample(self) -> procstat.ProcSample | None:
        return procstat.sample(self.pid) if self.pid else None

    def make_cmid(self, *parts: object) -> str:
        return "-".join([self.run_id, *map(str, parts)])

    async def drain(self, conns: list[Conn], expected: int, progress: Progress) -> None:
        """Wait until ``expected`` deliveries arrived, or none came for ``drain_timeout``."""
        last = -1
        idle_since = time.monotonic()
        while self.rec.deliveries < expected:
            if self.rec.deliveries != last:
                last = self.rec.deliveries
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.opts.drain_timeout:
                break
            progress.update(self.rec.deliveries)
            await asyncio.sleep(0.02)
        progress.update(self.rec.deliveries)

    def lost(self, conns: list[Conn]) -> int:
        """Acknowledged messages a connection should have got but did not."""
        by_conv: dict[str, list[str]] = {}
        for mid, cid in self.rec.acked.items():
            by_conv.setdefault(cid, []).append(mid)
        missing = 0
        for conn in conns:
            for cid in conn.convs:
                for mid in by_conv.get(cid, ()):
                    if mid not in conn.seen:
                        missing += 1
        return missing

    async def aclose(self) -> None:
        await self.http.aclose()


class Progress:
    """A Rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool, description: str, total: float | None) -> None:
        self._bar: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
                refresh_per_second=8,
            )
            self._task = self._bar.add_task(description, total=total)

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def stage(self, description: str, total: float | None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=description, total=total, completed=0)

    def update(self, completed: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed)


def _loadavg() -> float | None:
    """The machine's 1-minute load average: other work skews every figure."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / (1024 * 1024), 1)


class Measure:
    """Server and generator CPU/memory over the measured phase."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.start = bench.sample()
        self.end: procstat.ProcSample | None = None
        self.own_start = procstat.own_cpu_seconds()
        self.own_end = self.own_start
        self.t0 = time.perf_counter()
        self.t1 = self.t0
        self.peak_rss = self.start.rss_bytes if self.start else 0

    def poll(self) -> None:
        sample = self.bench.sample()
        if sample is not None:
            self.peak_rss = max(self.peak_rss, sample.rss_bytes)

    def stop(self, t1: float | None = None) -> None:
        self.end = self.bench.sample()
        if self.end is not None:
            self.peak_rss = max(self.peak_rss, self.end.rss_bytes)
        self.own_end = procstat.own_cpu_seconds()
        self.t1 = t1 if t1 is not None else time.perf_counter()

    def report(self, deliveries: int) -> JSON:
        wall = max(1e-9, self.t1 - self.t0)
        own = self.own_end - self.own_start
        out: JSON = {
            "duration_s": round(wall, 3),
            "deliveries_per_s": round(deliveries / wall, 1),
            "bench_cpu_s": round(own, 3),
            "bench_cpu_pct": round(100 * own / wall, 1),
            "server_pid": self.bench.pid,
            "server_cpu_s": None,
            "server_cpu_ms_per_1000_deliveries": None,
            "server_cpu_pct": None,
            "server_rss_start_mib": None,
            "server_rss_end_mib": None,
            "server_rss_peak_mib": None,
            "server_peak_rss_hwm_mib": None,
        }
        if self.start is not None and self.end is not None:
            cpu = self.end.cpu_seconds - self.start.cpu_seconds
            out["server_cpu_s"] = round(cpu, 3)
            out["server_cpu_pct"] = round(100 * cpu / wall, 1)
            if deliveries:
                out["server_cpu_ms_per_1000_deliveries"] = round(cpu * 1e6 / deliveries, 2)
            out["server_rss_start_mib"] = _mib(self.start.rss_bytes)
            out["server_rss_end_mib"] = _mib(self.end.rss_bytes)
            out["server_rss_peak_mib"] = _mib(self.peak_rss)
            out["server_peak_rss_hwm_mib"] = _mib(self.end.hwm_bytes)
        return out


async def _ticker(measure: Measure, progress: Progress, value: Callable[[], float]) -> None:
    while True:
        progress.update(value())
        measure.poll()
        await asyncio.sleep(0.1)


async def _with_ticker(
    measure: Measure, progress: Progress, value: Callable[[], float], work: Awaitable[None]
) -> None:
    ticker = asyncio.ensure_future(_ticker(measure, progress, value))
    try:
        await work
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


def _checks(bench: Bench, conns: list[Conn], expected: int) -> JSON:
    rec = bench.rec
    lat = sorted(rec.latencies)
    lost = bench.lost(conns)
    out: JSON = {
        "messages_sent": len(rec.acked),
        "send_errors": rec.send_errors,
        "deliveries": rec.deliveries,
        "expected_deliveries": expected,
        "lost": lost,
        "duplicated": rec.duplicates,
        "out_of_order": rec.out_of_order,
        "latency_samples": len(lat),
        "latency_p50_ms": round(_percentile(lat, 0.50) * 1000, 2),
        "latency_p90_ms": round(_percentile(lat, 0.90) * 1000, 2),
        "latency_p99_ms": round(_percentile(lat, 0.99) * 1000, 2),
        "latency_max_ms": round((lat[-1] if lat else 0.0) * 1000, 2),
        "latency_mean_ms": round((statistics.fmean(lat) if lat else 0.0) * 1000, 2),
    }
    return out


# ---------------------------------------------------------------------------- scenarios


async def scenario_latency(bench: Bench) -> JSON:
    """Pairs in direct conversations, one message at a time, each waiting for delivery."""
    opts = bench.opts
    with Progress(opts.progress, "creating users", opts.pairs * 2) as progress:
        accounts = await bench.create_accounts(opts.pairs * 2, "l", progress)
        pairs: list[tuple[Account, Account, str]] = []
        for index in range(opts.pairs):
            a, b = accounts[2 * index], accounts[2 * index + 1]
            cid = await bench.create_conversation(a, "direct", [b.id])
            pairs.append((a, b, cid))
        progress.stage("connecting", opts.pairs * 2)
        opened = 0

        def count() -> None:
            nonlocal opened
            opened += 1
            progress.update(opened)

        conns, failed = await bench.open_conns(accounts, count)
        if failed:
            raise RuntimeError(f"{failed} connections failed: {bench.rec.errors[:3]}")
        by_user = {c.account.id: c for c in conns}
        for a, b, cid in pairs:
            by_user[a.id].convs.add(cid)
            by_user[b.id].convs.add(cid)
        total = opts.pairs * opts.messages
        progress.stage("latency", total)
        gc.collect()
        measure = Measure(bench)
        done = 0
        timeouts = 0

        async def pair_loop(index: int, a: Account, b: Account, cid: str) -> None:
            nonlocal done, timeouts
            ca, cb = by_user[a.id], by_user[b.id]
            for i in range(opts.messages):
                sender, receiver = (ca, cb) if i % 2 == 0 else (cb, ca)
                cmid = bench.make_cmid("l", index, i)
                arrived = receiver.expect(cmid)
                if await sender.send_message(cid, cmid, bench.body) is None:
                    receiver.waiters.pop(cmid, None)
                    continue
                try:
                    await asyncio.wait_for(arrived, opts.drain_timeout)
                except TimeoutError:
                    timeouts += 1
                done += 1

        async def all_pairs() -> None:
            await asyncio.gather(*(pair_loop(i, a, b, cid) for i, (a, b, cid) in enumerate(pairs)))

        await _with_ticker(measure, progress, lambda: done, all_pairs())
        # The senders' own copies (every connection gets its own events too).
        await bench.drain(conns, 2 * len(bench.rec.acked), progress)
        measure.stop(bench.rec.last_delivery_at or None)
    result = _checks(bench, conns, 2 * total)
    result.update(measure.report(bench.rec.deliveries))
    result.update({"pairs": opts.pairs, "messages_per_pair": opts.messages, "timeouts": timeouts})
    for conn in conns:
        await conn.close()
    return result


async def scenario_fanout(bench: Bench) -> JSON:
    """One group of M members all connected; S senders x K messages, F in flight each."""
    opts = bench.opts
    senders = min(opts.senders, opts.members)
    with Progress(opts.progress, "creating users", opts.members) as progress:
        accounts = await bench.create_accounts(opts.members, "f", progress)
        cid = await bench.create_conversation(
            accounts[0], "group", [a.id for a in accounts[1:]], name=f"fanout {bench.run_id}"
        )
        progress.stage("connecting", opts.members)
        opened = 0

        def count() -> None:
            nonlocal opened
            opened += 1
            progress.update(opened)

        conns, failed = await bench.open_conns(accounts, count)
        if failed:
            raise RuntimeError(f"{failed} connections failed: {bench.rec.errors[:3]}")
        for conn in conns:
            conn.convs.add(cid)
        total_messages = senders * opts.per_sender
        expected = total_messages * len(conns)
        progress.stage("fanout", expected)
        gc.collect()
        measure = Measure(bench)

        async def sender_loop(s: int, conn: Conn) -> None:
            window = asyncio.Semaphore(opts.in_flight)

            async def one(i: int) -> None:
                try:
                    await conn.send_message(cid, bench.make_cmid("f", s, i), bench.body)
                finally:
                    window.release()

            tasks = []
            for i in range(opts.per_sender):
                await window.acquire()
                tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.gather(*tasks)

        async def work() -> None:
            await asyncio.gather(*(sender_loop(s, conns[s]) for s in range(senders)))
            await bench.drain(conns, len(bench.rec.acked) * len(conns), progress)

        await _with_ticker(measure, progress, lambda: bench.rec.deliveries, work())
        measure.stop(bench.rec.last_delivery_at or None)
    result = _checks(bench, conns, expected)
    result.update(measure.report(bench.rec.deliveries))
    conv = await bench.api("GET", f"/conversations/{cid}", accounts[0].token)
    last_seq = int(conv.get("conversation", conv).get("last_seq", -1))
    result.update(
        {
            "members": len(conns),
            "senders": senders,
            "messages_per_sender": opts.per_sender,
            "in_flight": opts.in_flight,
            "persisted_last_seq": last_seq,
            "persisted_ok": last_seq == len(bench.rec.acked) == total_messages,
        }
    )
    for conn in conns:
        await conn.close()
    return result


async def scenario_connections(bench: Bench) -> JSON:
    """N idle authenticated connections held open: the server's CPU to establish them
    (setup not counted) and its memory per connection."""
    opts = bench.opts
    n = opts.connections
    users = n if opts.distinct_users else max(1, min(opts.connection_users, n))
    with Progress(opts.progress, "creating users", users) as progress:
        if opts.distinct_users:
            accounts = await bench.create_token_accounts(users, "c", progress)
        else:
            accounts = await bench.create_accounts(users, "c", progress)
        progress.stage("connecting", n)
        gc.collect()
        await asyncio.sleep(1.0)
        before = bench.sample()
        measure = Measure(bench)
        opened = 0

        def count() -> None:
            nonlocal opened
            opened += 1

        t_open = time.perf_counter()
        result_box: list[tuple[list[Conn], int]] = []

        async def open_all() -> None:
            result_box.append(
                await bench.open_conns((accounts[i % users] for i in range(n)), count)
            )

        await _with_ticker(measure, progress, lambda: opened, open_all())
        conns, failed = result_box[0]
        open_seconds = time.perf_counter() - t_open
        measure.stop()
        progress.stage(f"holding {opts.hold:g}s", opts.hold)
        hold_start = time.monotonic()
        while time.monotonic() - hold_start < opts.hold:
            progress.update(time.monotonic() - hold_start)
            measure.poll()
            await asyncio.sleep(0.1)
        after = bench.sample()
        progress.stage("checking", len(conns))
        alive = 0
        sem = asyncio.Semaphore(opts.connect_concurrency)

        async def ping(conn: Conn) -> None:
            nonlocal alive
            async with sem:
                try:
                    answer = await conn.request({"type": "ping"}, timeout=30)
                    if answer.get("type") == "ack":
                        alive += 1
                except Exception as exc:  # noqa: BLE001  # one ping: recorded
                    bench.rec.error(f"ping {conn.account.username}: {exc!r}")
            progress.update(alive)

        await asyncio.gather(*(ping(c) for c in conns))
        progress.stage("closing", len(conns))
        closing = [c.close() for c in conns]
        for chunk in range(0, len(closing), 200):
            await asyncio.gather(*closing[chunk : chunk + 200])
    result: JSON = {
        "connections": n,
        "accounts": users,
        "distinct_users": opts.distinct_users,
        "connect_concurrency": opts.connect_concurrency,
        "opened": len(conns),
        "failed": failed,
        "failed_close_codes": {str(k): v for k, v in sorted(bench.rec.close_codes.items())},
        "alive_after_hold": alive,
        "open_seconds": round(open_seconds, 2),
        "connections_per_s": round(len(conns) / max(open_seconds, 1e-9), 1),
        "lost": 0,
        "duplicated": bench.rec.duplicates,
        "out_of_order": bench.rec.out_of_order,
    }
    report = measure.report(0)
    report["server_cpu_ms_per_connection"] = (
        round(report["server_cpu_s"] * 1000 / max(1, len(conns)), 3)
        if report["server_cpu_s"] is not None
        else None
    )
    result.update(report)
    if before is not None and after is not None and conns:
        growth = after.rss_bytes - before.rss_bytes
        result["server_rss_before_mib"] = _mib(before.rss_bytes)
        result["server_rss_after_mib"] = _mib(after.rss_bytes)
        result["server_kib_per_connection"] = round(growth / 1024 / len(conns), 2)
    else:
        result["server_kib_per_connection"] = None
    return result


async def scenario_soak(bench: Bench) -> JSON:
    """A mixed load for ``duration`` seconds: group and direct messages, edits, reactions,
    reads and typing, while connections are dropped and resumed with ``since``."""
    opts = bench.opts
    n = max(2, opts.soak_users)
    rng = random.Random(1)
    with Progress(opts.progress, "creating users", n) as progress:
        accounts = await bench.create_accounts(n, "s", progress)
        group = await bench.create_conversation(
            accounts[0], "group", [a.id for a in accounts[1:]], name=f"soak {bench.run_id}"
        )
        directs: list[tuple[int, int, str]] = []
        for i in range(0, n - 1, 2):
            cid = await bench.create_conversation(accounts[i], "direct", [accounts[i + 1].id])
            directs.append((i, i + 1, cid))
        progress.stage("connecting", n)
        conns, failed = await bench.open_conns(accounts)
        if failed:
            raise RuntimeError(f"{failed} connections failed: {bench.rec.errors[:3]}")
        convs_of: dict[int, list[str]] = {i: [group] for i in range(n)}
        for conn in conns:
            conn.convs.add(group)
        for a, b, cid in directs:
            conns[a].convs.add(cid)
            conns[b].convs.add(cid)
            convs_of[a].append(cid)
            convs_of[b].append(cid)
        members_of: dict[str, int] = {group: n}
        for _, _, cid in directs:
            members_of[cid] = 2
        progress.stage(f"soak {opts.duration:g}s", opts.duration)
        gc.collect()
        measure = Measure(bench)
        rss_series: list[float] = []
        window = asyncio.Semaphore(max(1, opts.in_flight) * n)
        tasks: set[asyncio.Task[None]] = set()
        counts = {"edits": 0, "reactions": 0, "reads": 0, "typing": 0, "resumes": 0}
        resume_errors = 0
        send_retries = 0
        interrupted = 0

        async def one_send(i: int, k: int) -> None:
            nonlocal send_retries, interrupted
            conn = conns[i]
            cid = rng.choice(convs_of[i]) if rng.random() < 0.5 else group
            cmid = bench.make_cmid("s", i, k)
            try:
                # A send cut by a dropped connection is sent again with the same
                # client_msg_id once resumed, as a real client does: the server must
                # answer with the original, never store it twice.
                message = None
                for attempt in range(4):
                    await conn.wait_open()
                    message = await conn.send_message(cid, cmid, bench.body, final=attempt == 3)
                    if message is not None:
                        break
                    send_retries += 1
                if message is None:
                    return
                roll = rng.random()
                if roll < 0.05:
                    await bench.api(
                        "PATCH",
                        f"/conversations/{cid}/messages/{message['seq']}",
                        conn.account.token,
                        {"body": bench.body + " (edited)"},
                    )
                    counts["edits"] += 1
                elif roll < 0.10:
                    await bench.api(
                        "PUT",
                        f"/conversations/{cid}/messages/{message['seq']}/reactions/%F0%9F%91%8D",
                        conns[(i + 1) % n].account.token if cid == group else conn.account.token,
                    )
                    counts["reactions"] += 1
                elif roll < 0.15 and not conn.closed:
                    await conn.request({"type": "typing", "conversation_id": cid})
                    counts["typing"] += 1
                elif roll < 0.25 and not conn.closed:
                    await conn.request(
                        {"type": "read", "conversation_id": cid, "seq": message["seq"]}
                    )
                    counts["reads"] += 1
            except (ConnectionError, ConnectionClosed):
                interrupted += 1  # a typing/read frame cut by one of our own drops
            except Exception as exc:  # noqa: BLE001  # one operation: recorded
                bench.rec.error(f"soak op: {exc!r}")
            finally:
                window.release()

        async def resume(i: int) -> None:
            nonlocal resume_errors
            conn = conns[i]
            if conn.closed:
                return
            conn.abort()
            if conn.reader is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(conn.reader, 5)
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            try:
                # from the last event this connection processed (its session's position)
                await conn.open(bench.ws_url)
                counts["resumes"] += 1
            except Exception as exc:  # noqa: BLE001  # one resume: recorded
                resume_errors += 1
                bench.rec.error(f"resume {conn.account.username}: {exc!r}")

        async def drive() -> None:
            start = time.monotonic()
            k = 0
            next_resume = start + opts.reconnect_every if opts.reconnect_every > 0 else float("inf")
            next_rss = start
            credit = 0.0
            last = start
            while (now := time.monotonic()) - start < opts.duration:
                credit += (now - last) * opts.rate
                last = now
                while credit >= 1.0:
                    credit -= 1.0
                    await window.acquire()
                    i = rng.randrange(n)
                    task = asyncio.ensure_future(one_send(i, k))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    k += 1
                if now >= next_resume:
                    next_resume = now + opts.reconnect_every
                    task = asyncio.ensure_future(resume(rng.randrange(n)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if now >= next_rss:
                    next_rss = now + 1.0
                    sample = bench.sample()
                    if sample is not None:
                        rss_series.append(sample.rss_bytes / (1024 * 1024))
                progress.update(now - start)
                await asyncio.sleep(0.01)
            if tasks:
                await asyncio.gather(*list(tasks), return_exceptions=True)
            # A connection whose resume is still pending must be open before draining.
            expected = sum(members_of[cid] for cid in bench.rec.acked.values())
            await bench.drain(conns, expected, _NoProgress)

        await _with_ticker(measure, _NoProgress, lambda: 0, drive())
        measure.stop(bench.rec.last_delivery_at or None)
    expected = sum(members_of[cid] for cid in bench.rec.acked.values())
    result = _checks(bench, conns, expected)
    result.update(measure.report(bench.rec.deliveries))
    result.update(
        {
            "users": n,
            "duration_target_s": opts.duration,
            "rate_target_per_s": opts.rate,
            "other_events": bench.rec.other_events,
            "resume_errors": resume_errors,
            "send_retries_after_resume": send_retries,
            "interrupted_ops": interrupted,
            **counts,
            "server_rss_series_mib": [round(v, 1) for v in rss_series],
            "server_rss_growth_mib": round(rss_series[-1] - rss_series[0], 1)
            if len(rss_series) >= 2
            else None,
        }
    )
    for conn in conns:
        await conn.close()
    return result


class _Silent(Progress):
    def __init__(self) -> None:
        super().__init__(False, "", None)


_NoProgress = _Silent()

_SCENARIOS: dict[str, Callable[[Bench], Awaitable[JSON]]] = {
    "latency": scenario_latency,
    "fanout": scenario_fanout,
    "connections": scenario_connections,
    "soak": scenario_soak,
    "files": bench_files.scenario_files,
}


async def run(scenario: str, options: Options | None = None) -> JSON:
    """Run one scenario and return its figures (see the module docstring).

    With ``options.spawn`` a server is started on a temporary data directory and
    stopped afterwards; otherwise ``options.url`` (and ``server_pid`` for CPU and
    memory figures) name a running one.
    """
    opts = options or Options()
    if scenario not in _SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    fds = procstat.raise_open_files_limit(
        max(4096, (opts.connections if scenario == "connections" else 0) * 2 + 1024)
    )
    spawned: SpawnedServer | None = None
    pid: int | None
    if opts.spawn:
        env = bench_files.spawn_env(opts) if scenario == "files" else None
        spawned = await spawn_server(extra_args=opts.serve_args, extra_env=env)
        url, pid = spawned.url, spawned.pid
        opts.admin_username = spawned.admin_username
        opts.admin_password = spawned.admin_password
    else:
        if not opts.url:
            raise ValueError("give a server url or spawn one")
        url, pid = opts.url, opts.server_pid
    bench = Bench(url, opts, pid)
    load_before = _loadavg()
    try:
        await bench.setup_admin()
        started = time.time()
        result = await _SCENARIOS[scenario](bench)
    finally:
        await bench.aclose()
        if spawned is not None:
            await asyncio.to_thread(spawned.stop)
    checks_ok = (
        result.get("lost", 0) == 0
        and result.get("duplicated", 0) == 0
        and result.get("out_of_order", 0) == 0
        and result.get("send_errors", 0) == 0
        and result.get("failed", 0) == 0
        and result.get("persisted_ok", True) is not False
        and result.get("resume_errors", 0) == 0
        and result.get("timeouts", 0) == 0
        and (scenario != "connections" or result.get("alive_after_hold") == result.get("opened"))
    )
    head: JSON = {
        "scenario": scenario,
        "ok": checks_ok,
        "url": url,
        "spawned": opts.spawn,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "cpus": os.cpu_count(),
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": _loadavg(),
        "open_files_limit": fds,
    }
    head.update(result)
    head["errors"] = bench.rec.errors
    head["options"] = {
        k: v
        for k, v in asdict(opts).items()
        if k not in ("admin_password", "progress", "serve_args")
    }
    return head
