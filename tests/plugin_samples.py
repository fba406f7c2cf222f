"""Plugins for the tests, installed as a distribution of their own (`installed_samples`
makes its .dist-info on sys.path): found through importlib.metadata like any plugin."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from tidings.plugins.api import Draft, PluginContext, PluginError, PluginEvent, Refuse, Replace

ENTRY_POINTS = {
    "t-raising": "Raising",
    "t-sleepy": "Sleepy",
    "t-blocking": "Blocking",
    "t-refusing": "Refusing",
    "t-upper": "Upper",
    "t-wrong": "WrongAnswer",
    "t-bad-settings": "BadSettings",
    "t-events": "Events",
    "t-verbose": "Verbose",
}


class Raising:
    def __init__(self, ctx: PluginContext) -> None:
        pass

    async def before_message(self, ctx: PluginContext, draft: Draft) -> None:
        raise RuntimeError("the plugin broke")


class Sleepy:
    """async: sleeps far past any test's time limit"""

    def __init__(self, ctx: PluginContext) -> None:
        pass

    async def before_message(self, ctx: PluginContext, draft: Draft) -> None:
        await asyncio.sleep(5)


class Blocking:
    """a plain def that blocks: runs in a plugin thread, the loop goes on"""

    def __init__(self, ctx: PluginContext) -> None:
        pass

    def before_message(self, ctx: PluginContext, draft: Draft) -> None:
        time.sleep(1)


class Refusing:
    """Refuses a body with `word` in it (its settings); sees edits as drafts with a seq."""

    drafts: ClassVar[list[Draft]] = []

    def __init__(self, ctx: PluginContext) -> None:
        self.word = str(ctx.settings.get("word", "forbidden"))

    async def before_message(self, ctx: PluginContext, draft: Draft) -> Refuse | None:
        Refusing.drafts.append(draft)
        if self.word in draft.body:
            return Refuse("no forbidden words here", rule="test-rule")
        return None


class Upper:
    def __init__(self, ctx: PluginContext) -> None:
        pass

    def before_message(self, ctx: PluginContext, draft: Draft) -> Replace:
        return Replace(draft.body.upper())


class Verbose:
    """Refuses everything, at length."""

    def __init__(self, ctx: PluginContext) -> None:
        pass

    async def before_message(self, ctx: PluginContext, draft: Draft) -> Refuse:
        return Refuse("r" * 10_000, rule="q" * 1000)


class WrongAnswer:
    def __init__(self, ctx: PluginContext) -> None:
        pass

    async def before_message(self, ctx: PluginContext, draft: Draft) -> object:
        return "yes"


class BadSettings:
    def __init__(self, ctx: PluginContext) -> None:
        raise PluginError("limit must be a number")


class Events:
    """after_event only: fails its first `fail_times` runs of each event (its settings)."""

    seen: ClassVar[list[PluginEvent]] = []
    attempts: ClassVar[dict[str, int]] = {}
    after_event_kinds = frozenset({"message"})

    def __init__(self, ctx: PluginContext) -> None:
        self.fail_times = int(ctx.settings.get("fail_times", 0))

    async def after_event(self, ctx: PluginContext, event: PluginEvent) -> None:
        n = Events.attempts[event.position] = Events.attempts.get(event.position, 0) + 1
        if n <= self.fail_times:
            raise RuntimeError(f"after_event failed on attempt {n}")
        Events.seen.append(event)


def install(into: Path) -> Iterator[None]:
    """A distribution `tidings-test-plugins` in `into`, on sys.path while in use."""
    info = into / "tidings_test_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tidings-test-plugins\nVersion: 1.0\n"
    )
    lines = [f"{name} = tests.plugin_samples:{attr}" for name, attr in ENTRY_POINTS.items()]
    (info / "entry_points.txt").write_text("[tidings.plugins]\n" + "\n".join(lines) + "\n")
    sys.path.append(str(into))
    try:
        yield
    finally:
        sys.path.remove(str(into))
