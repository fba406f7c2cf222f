"""`tidings plugins`: server plugins."""

from __future__ import annotations

import typer
from rich.table import Table

from tidings.cli.common import (
    JsonOut,
    _settings,
    console,
    fail,
    print_json,
    say,
)

plugins_app = typer.Typer(
    help="Server plugins: which are installed and enabled (docs/integrations.md).",
    no_args_is_help=True,
)


# --- plugins ---------------------------------------------------------------------------
@plugins_app.command("list")
def plugins_list(as_json: JsonOut = False) -> None:
    """The plugins installed in this Python environment (entry points of the group
    tidings.plugins) and whether the settings enable them; then loads the enabled ones
    with their settings, as `serve` would: a problem is one line and exit 1. --json:
    {"plugins": [...], "loaded": [...]} (`order`: its place in the settings' list,
    null when not enabled; `fail_closed`: a failure refuses the action)."""
    from tidings.app.plugins import PluginLoadError, installed, load_plugins

    settings = _settings()
    enabled = {name: i for i, name in enumerate(settings.plugins, 1)}
    table = Table("name", "entry point", "distribution", "enabled", "on failure")
    found = installed()
    rows: list[dict[str, object]] = []
    for name in sorted(found, key=lambda n: (n not in enabled, enabled.get(n, 0), n)):
        ep = found[name]
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "(source tree)"
        order = f"yes ({enabled[name]})" if name in enabled else "no"
        closed = "refuse" if name in settings.plugins_fail_closed else "let through"
        table.add_row(name, ep.value, dist, order, closed if name in enabled else "")
        rows.append(
            {
                "name": name,
                "entry_point": ep.value,
                "distribution": None if ep.dist is None else ep.dist.name,
                "version": None if ep.dist is None else ep.dist.version,
                "enabled": name in enabled,
                "order": enabled.get(name),
                "fail_closed": name in settings.plugins_fail_closed,
            }
        )
    if not as_json:
        console.print(table)
    try:
        loaded = load_plugins(settings)
    except PluginLoadError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "plugins": rows,
                "loaded": [{"name": p.name, "hooks": list(p.hooks)} for p in loaded],
            }
        )
        return
    for plugin in loaded:
        say(f"{plugin.name}: loaded, hooks: {', '.join(plugin.hooks) or 'none'}")
