"""In-process bus: the embedded default. Delivery is synchronous and in publish order."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence

from tidings.bus.ports import Envelope, Handler
from tidings.core.models import PresenceState

_COUNTER_SWEEP_AT = 100_000  # drop ended windows when this many keys are held


def aggregate_presence(states: Sequence[str]) -> str:
    if not states:
        return PresenceState.OFFLINE.value
    if any(s == PresenceState.ONLINE.value for s in states):
        return PresenceState.ONLINE.value
    return PresenceState.AWAY.value


class LocalBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._presence: dict[str, dict[str, str]] = {}
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (hits, window end)
        self.reconnects = 0  # in-process: never disconnected

    async def publish(self, topic: str, envelope: Envelope) -> None:
        for handler in tuple(self._handlers.get(topic, ())):
            result = handler(topic, envelope)
            if inspect.isawaitable(result):
                await result

    async def publish_many(self, topics: Sequence[str], envelope: Envelope) -> None:
        for topic in topics:
            await self.publish(topic, envelope)

    def subscribe(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.setdefault(topic, [])
        if handler not in handlers:
            handlers.append(handler)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.get(topic)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[topic]

    async def set_presence(self, user_id: str, conn_id: str, state: str | None) -> str:
        conns = self._presence.setdefault(user_id, {})
        if state is None:
            conns.pop(conn_id, None)
        else:
            conns[conn_id] = state
        result = aggregate_presence(list(conns.values()))
        if not conns:
            del self._presence[user_id]
        return result

    async def get_presence(self, user_ids: Sequence[str]) -> dict[str, str]:
        return {u: aggregate_presence(list(self._presence.get(u, {}).values())) for u in user_ids}

    async def start(self) -> None:
        return None

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        return None  # in-process: nothing is ever missed

    async def ping(self) -> None:
        return None

    async def count_hit(self, key: str, window_seconds: float) -> tuple[int, float]:
        now = time.monotonic()
        count, ends = self._counters.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window_seconds
            if len(self._counters) >= _COUNTER_SWEEP_AT:
                self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        self._counters[key] = (count + 1, ends)
        return count + 1, ends - now

    async def close(self) -> None:
        self._handlers.clear()
