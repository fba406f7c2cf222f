"""Redis bus: pub/sub between nodes, presence with expiry, shared counters.

Redis is never the source of truth: a node that misses traffic (a reconnect) catches up
from the database (see gateway/sequencer.py), so an outage delays delivery, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable, Sequence

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from tidings.bus.codec import decode_envelope, encode_envelope
from tidings.bus.local import aggregate_presence
from tidings.bus.ports import Envelope, Handler

log = structlog.get_logger(__name__)


class RedisBus:
    def __init__(self, url: str, prefix: str = "tidings", presence_ttl: float = 60.0) -> None:
        self.redis = aioredis.from_url(
            url,
            socket_connect_timeout=3,
            socket_timeout=5,
            health_check_interval=10,
            retry_on_timeout=True,
        )
        self.prefix = prefix
        self.presence_ttl = presence_ttl
        self._handlers: dict[str, list[Handler]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._local_presence: dict[str, dict[str, str]] = {}
        self._on_reconnect: list[Callable[[], None]] = []
        self.connected = False
        self.reconnects = 0  # subscriptions made again after a lost connection
        self._lost = False
        self._closing = False

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}:{topic}"

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Called after every (re)subscription: traffic may have been missed."""
        self._on_reconnect.append(callback)

    # --- publish / subscribe ---------------------------------------------------------
    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self.redis.publish(self._channel(topic), encode_envelope(envelope))

    async def publish_many(self, topics: Sequence[str], envelope: Envelope) -> None:
        if not topics:
            return
        data = encode_envelope(envelope)
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                pipe.publish(self._channel(topic), data)
            await pipe.execute()

    def subscribe(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.setdefault(topic, [])
        if handler in handlers:
            return
        handlers.append(handler)
        if len(handlers) == 1:
            self._command("subscribe", topic)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.get(topic)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[topic]
                self._command("unsubscribe", topic)

    def _command(self, verb: str, topic: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or not self.connected:
            return  # (re)subscribed from _handlers when the reader connects

        async def run() -> None:
            with contextlib.suppress(RedisError, OSError):
                await getattr(pubsub, verb)(self._channel(topic))

        asyncio.get_running_loop().create_task(run())

    async def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat_loop())

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self._closing:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                channels = [self._channel(t) for t in self._handlers] or [self._channel("_")]
                await pubsub.subscribe(*channels)
                self._pubsub, self.connected, delay = pubsub, True, 0.1
                # Topics added while the subscription above was in flight.
                missing = [self._channel(t) for t in self._handlers]
                missing = [c for c in missing if c not in channels]
                if missing:
                    await pubsub.subscribe(*missing)
                log.info("bus_connected", channels=len(channels))
                if self._lost:
                    self._lost = False
                    self.reconnects += 1
                for callback in self._on_reconnect:
                    callback()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    channel = message["channel"].decode()
                    topic = channel[len(self.prefix) + 1 :]
                    await self._dispatch(topic, decode_envelope(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("bus_disconnected", error=str(exc))
                self.connected = False
                self._lost = True
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:  # a bad message or handler must not stop the node
                log.exception("bus_dispatch_failed")

    async def _dispatch(self, topic: str, envelope: Envelope) -> None:
        for handler in tuple(self._handlers.get(topic, ())):
            result = handler(topic, envelope)
            if inspect.isawaitable(result):
                await result

    # --- presence ---------------------------------------------------------------------
    def _presence_keys(self, user_id: str) -> tuple[str, str]:
        return f"{self.prefix}:presence:{user_id}", f"{self.prefix}:presence_state:{user_id}"

    async def set_presence(self, user_id: str, conn_id: str, state: str | None) -> str:
        zkey, hkey = self._presence_keys(user_id)
        local = self._local_presence.setdefault(user_id, {})
        async with self.redis.pipeline(transaction=True) as pipe:
            if state is None:
                local.pop(conn_id, None)
                pipe.zrem(zkey, conn_id)
                pipe.hdel(hkey, conn_id)
            else:
                local[conn_id] = state
                pipe.zadd(zkey, {conn_id: time.time() + self.presence_ttl})
                pipe.hset(hkey, conn_id, state)
                pipe.expire(zkey, int(self.presence_ttl) * 2)
                pipe.expire(hkey, int(self.presence_ttl) * 2)
            await pipe.execute()
        if not local:
            self._local_presence.pop(user_id, None)
        return (await self.get_presence([user_id]))[user_id]

    async def get_presence(self, user_ids: Sequence[str]) -> dict[str, str]:
        now = time.time()
        result: dict[str, str] = {}
        for user_id in user_ids:
            zkey, hkey = self._presence_keys(user_id)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(zkey, "-inf", now)
                pipe.zrange(zkey, 0, -1)
                pipe.hgetall(hkey)
                _, live, states = await pipe.execute()
            live_ids = {c.decode() for c in live}
            values = [v.decode() for k, v in states.items() if k.decode() in live_ids]
            result[user_id] = aggregate_presence(values)
        return result

    async def _beat_loop(self) -> None:
        """Refresh this node's presence entries; a dead node's expire after the TTL."""
        while not self._closing:
            await asyncio.sleep(self.presence_ttl / 3)
            try:
                expiry = time.time() + self.presence_ttl
                async with self.redis.pipeline(transaction=False) as pipe:
                    for user_id, conns in self._local_presence.items():
                        zkey, hkey = self._presence_keys(user_id)
                        pipe.zadd(zkey, dict.fromkeys(conns, expiry))
                        pipe.hset(hkey, mapping=dict(conns))  # type: ignore[arg-type]
                        pipe.expire(zkey, int(self.presence_ttl) * 2)
                        pipe.expire(hkey, int(self.presence_ttl) * 2)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                log.warning("presence_heartbeat_failed", error=str(exc))

    # --- counters ---------------------------------------------------------------------
    async def count_hit(self, key: str, window_seconds: float) -> tuple[int, float]:
        """A fixed window shared by every node: INCR, PEXPIRE NX, PTTL in one round trip."""
        name = f"{self.prefix}:rate:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.pexpire(name, max(1, int(window_seconds * 1000)), nx=True)
            pipe.pttl(name)
            count, _, ttl_ms = await pipe.execute()
        return int(count), max(0.0, int(ttl_ms) / 1000)

    # --- health -------------------------------------------------------------------------
    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        # The loops also stop on the flag: on Python 3.11 a cancel that lands as
        # redis-py's read timeout expires can come out as TimeoutError (an OSError), which
        # the read loop takes for a lost connection and goes on; awaiting it hung close().
        self._closing = True
        for task in (self._reader, self._heartbeat):
            while task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            if task is not None and not task.cancelled():
                with contextlib.suppress(Exception):
                    task.exception()  # retrieved: no "never retrieved" warning
        with contextlib.suppress(Exception):
            await self.redis.aclose()
