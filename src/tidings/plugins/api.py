"""The plugin API: what a server plugin sees and may return (docs/integrations.md).

A plugin is a Python entry point in the group ``tidings.plugins`` naming a factory (a
class, usually) that takes a :class:`PluginContext` and returns the plugin object::

    [project.entry-points."tidings.plugins"]
    dlp = "tidings.plugins.dlp:DlpPlugin"

The server loads the ones its ``plugins`` setting names, at start-up. The object may
define either hook, both optional, each an ``async def`` (runs on the server's event
loop: it must never block) or a plain ``def`` (runs in a small thread pool):

- ``before_message(ctx, draft) -> None | Refuse | Replace``: before a message is stored
  (a send or an edit). ``None`` lets it through, :class:`Refuse` refuses it (the sender
  gets ``refused_by_policy`` with the reason), :class:`Replace` stores another body
  (e.g. masked). It runs under the ``plugin_timeout_seconds`` limit; a hook that raises
  or overruns lets the message through (fail-open, logged and counted), unless the
  plugin is named in ``plugins_fail_closed``: then the send is refused as unavailable.
- ``after_event(ctx, event)``: after an event is committed, as a background job (never
  on the send path): retried with backoff on failure, then kept as a dead letter.
  ``after_event_kinds`` (a set of event kinds) narrows the events it gets.

Only this module is the API: nothing else of ``tidings`` is promised to plugins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog


class PluginError(Exception):
    """Raise it from a plugin's factory when its settings are wrong: the server does not
    start and prints the message, prefixed with the plugin's name."""


@dataclass(frozen=True, slots=True)
class PluginContext:
    """Given to the factory and to every hook: the plugin's entry point name, its
    settings table (``[plugin_settings.NAME]``, read-only) and a logger bound to its
    name."""

    name: str
    settings: Mapping[str, Any]
    log: structlog.stdlib.BoundLogger


@dataclass(frozen=True, slots=True)
class Sender:
    id: str
    username: str
    role: str  # owner | admin | member | guest
    bot: bool


@dataclass(frozen=True, slots=True)
class Draft:
    """A message about to be stored. ``edit_seq`` is None for a send, the edited
    message's seq for an edit (then ``client_msg_id`` is None). The sender's membership
    is checked after the hooks: a draft may be for a conversation it cannot post to."""

    sender: Sender
    conversation_id: str
    body: str
    client_msg_id: str | None = None
    edit_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Refuse:
    """Refuse the message. ``reason`` is shown to the sender: say which rule matched,
    never the matched text itself (it may be the secret). ``rule`` is an optional
    machine-readable name of the rule (in the error's details)."""

    reason: str
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class Replace:
    """Store ``body`` instead of the draft's body (it goes through the same size check)."""

    body: str


Verdict = Refuse | Replace | None


@dataclass(frozen=True, slots=True)
class PluginEvent:
    """A committed event as a client sees it: ``data`` is the wire JSON of the event
    (``kind`` and its fields, docs/protocol.md), ``position`` its place in the stream."""

    position: str
    kind: str
    conversation_id: str | None
    data: Mapping[str, Any]


class Plugin(Protocol):
    """For type checkers and readers only: a plugin defines any of these (sync or
    async), and may set ``after_event_kinds``. Nothing checks for this class."""

    def before_message(self, ctx: PluginContext, draft: Draft) -> Verdict: ...

    def after_event(self, ctx: PluginContext, event: PluginEvent) -> None: ...
