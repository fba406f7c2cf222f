"""Loading server plugins at start-up: the entry points of the group `tidings.plugins`
that the `plugins` setting names (importlib.metadata), each made with its settings table.
Anything wrong stops the start with one line (PluginLoadError)."""

from __future__ import annotations

import copy
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

import structlog

from tidings.app.settings import Settings
from tidings.plugins.api import PluginContext, PluginError
from tidings.services.plugins import LoadedPlugin

log = structlog.get_logger(__name__)
GROUP = "tidings.plugins"
# The plugins of this package, as pyproject.toml declares them: found also when tidings
# runs from a source tree whose metadata predates them (tests keep the two equal).
SHIPPED = {"dlp": "tidings.plugins.dlp:DlpPlugin"}


class PluginLoadError(Exception):
    """A plugin named in the settings cannot be loaded: the message is one line."""


def installed() -> dict[str, EntryPoint]:
    """Every plugin entry point on this Python's path, by name."""
    found = {name: EntryPoint(name, value, GROUP) for name, value in SHIPPED.items()}
    found.update({ep.name: ep for ep in entry_points(group=GROUP)})
    return found


def load_plugins(settings: Settings) -> list[LoadedPlugin]:
    if not settings.plugins:
        return []
    available = installed()
    loaded = []
    for name in settings.plugins:
        ep = available.get(name)
        if ep is None:
            raise PluginLoadError(
                f"plugin {name!r} is not installed: no entry point of that name in the "
                f"group {GROUP} (installed: {', '.join(sorted(available)) or 'none'})"
            )
        try:
            factory = ep.load()
        except Exception as exc:  # whatever the import raised: one line
            raise PluginLoadError(
                f"plugin {name!r}: cannot import {ep.value}: {type(exc).__name__}: {exc}"
            ) from exc
        table = copy.deepcopy(settings.plugin_settings.get(name, {}))
        logger = structlog.get_logger(f"tidings.plugin.{name}").bind(plugin=name)
        ctx = PluginContext(name, MappingProxyType(table), logger)
        try:
            plugin = factory(ctx)
        except PluginError as exc:
            raise PluginLoadError(f"plugin {name!r}: {exc}") from exc
        except Exception as exc:  # a plugin's own failure: one line
            raise PluginLoadError(
                f"plugin {name!r} failed to start: {type(exc).__name__}: {exc}"
            ) from exc
        dist = ep.dist
        source = f"{dist.name} {dist.version}" if dist is not None else "shipped with tidings"
        loaded.append(
            LoadedPlugin(
                name,
                plugin,
                ctx,
                fail_closed=name in settings.plugins_fail_closed,
                source=source,
            )
        )
    log.info(
        "plugins_loaded",
        plugins=[{"name": p.name, "source": p.source, "hooks": p.hooks} for p in loaded],
        fail_closed=settings.plugins_fail_closed,
    )
    return loaded
