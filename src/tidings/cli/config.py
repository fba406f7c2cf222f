"""`tidings config`: the LDAP and OpenID Connect settings and the limits (message size,
edit window, page sizes, login protection, rates) admins may also change from the web
(services/config.py): show them, set one, put one back to its default. Running
servers pick a change up within `config_poll_seconds`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from tidings.cli.common import console, fail, run_with_container, say
from tidings.core.errors import TidingsError

if TYPE_CHECKING:
    from tidings.app.container import Container

config_app = typer.Typer(
    help="The LDAP and OpenID Connect settings and the limits stored in the database (the "
    "web admin's Identity, SSO and Organization forms): show, set, unset. A setting the "
    "configuration file or the environment gives is locked (docs/identity.md, Configuring "
    "from the web).",
    no_args_is_help=True,
)


def _shown(value: object) -> str:
    return (
        "" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()
    )


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Every setting: its value in force (a secret: only whether one is set), whether the
    configuration file locks it, its default."""
    rows = run_with_container(lambda c: c.services.config.show(None))
    if as_json:
        say(orjson.dumps({"settings": rows}, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("name", "value", "locked", "default")
    for row in rows:
        value = ("set" if row["set"] else "not set") if row["secret"] else _shown(row["value"])
        table.add_row(
            str(row["name"]), value, "locked" if row["locked"] else "", _shown(row["default"])
        )
    console.print(table)


def _parsed(name: str, text: str, rows: list[dict[str, object]]) -> object:
    """`text` as the setting's type: JSON for numbers, booleans and mappings, else text."""
    row = next((r for r in rows if r["name"] == name), None)
    if row is None or row["secret"] or not isinstance(row["default"], (bool, int, float, dict)):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _update(name: str, value: object | None, parse: bool) -> None:
    async def action(c: Container) -> None:
        rows = await c.services.config.show(None)
        new = _parsed(name, str(value), rows) if parse else value
        await c.services.config.update(None, {name: new})

    try:
        run_with_container(action)
    except TidingsError as exc:  # run_with_container reports most; be sure
        fail(exc.message)
    say(f"{name}: {'set' if value is not None else 'back to its default'}")


@config_app.command("set")
def config_set(
    name: Annotated[str, typer.Argument(help="e.g. ldap_url or max_message_bytes")],
    value: Annotated[str, typer.Argument(help="text; numbers, true/false, JSON objects")],
) -> None:
    """Set one setting (validated with the others; audited; a secret is sealed)."""
    _update(name, value, True)


@config_app.command("unset")
def config_unset(
    name: Annotated[str, typer.Argument(help="e.g. ldap_url or max_message_bytes")],
) -> None:
    """Put one setting back to its default (a secret: remove it)."""
    _update(name, None, False)
