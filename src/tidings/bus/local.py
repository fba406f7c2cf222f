"""In-process bus: the embedded default. Delivery is synchronous and in publish order."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from tidings.bus.ports import Envelope, Handler
from tidings.core.models import PresenceState


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

    async def close(self) -> None:
        self._handlers.clear()
