"""What every `tidings` command shares: the consoles, plain output, one-line failures,
the global options' state, the settings, and running an action on a container (the
command modules import these from here, and cli/main.py mounts the modules)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from tidings.core.errors import TidingsError

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.app.settings import Settings

T = TypeVar("T")


def _console(stderr: bool = False) -> Console:
    """A terminal gets rich's width; a pipe or a file gets lines as long as they are
    (no wrapping, no truncated table cells)."""
    made = Console(stderr=stderr)
    if made.is_terminal:
        return made
    return Console(stderr=stderr, width=100_000, soft_wrap=True)


console = _console()
err = _console(stderr=True)


class _State:
    data_dir: Path | None = None
    config: Path | None = None


state = _State()


def _remember(attr: str) -> Callable[[Path | None], None]:
    def callback(value: Path | None) -> None:
        if value is not None:  # after the subcommand: wins over the same option before it
            setattr(state, attr, value)

    return callback


_carrier = typer.Typer()


@_carrier.command()
def _global_options(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            callback=_remember("data_dir"),
            expose_value=False,
            help="Data directory (default ./tidings-data).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            callback=_remember("config"),
            expose_value=False,
            help="TOML settings file (also TIDINGS_CONFIG).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Carries `--data-dir` and `--config`: typer builds them, `add_global_options` copies them."""


def add_global_options(command: Any) -> None:
    """Give `command` and everything below it `--data-dir` and `--config` where it does
    not have them yet (the root callback takes them before the subcommand)."""
    built = typer.main.get_command(_carrier).params
    have = {opt for p in command.params for opt in getattr(p, "opts", ())}
    command.params.extend(o for o in built if o.opts[0] not in have)
    for sub in getattr(command, "commands", {}).values():
        add_global_options(sub)


class RootGroup(TyperGroup):
    """The `tidings` group: the global options also work after any subcommand."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for sub in self.commands.values():
            add_global_options(sub)


JsonOut = Annotated[
    bool,
    typer.Option("--json", help="Print JSON (stable keys) instead of a table: for scripts."),
]


def print_json(data: object) -> None:
    """`data` as indented JSON on standard output, keys sorted."""
    sys.stdout.write(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )


def say(text: str, to: Console = console) -> None:
    """Print `text` as it is: no markup, no highlighting, long lines not wrapped."""
    to.print(text, markup=False, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    say(f"error: {message}", err)
    raise typer.Exit(code)


def _settings(**overrides: object) -> Settings:
    from tidings.app.settings import load_settings

    try:
        return load_settings(state.config, data_dir=state.data_dir, **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except FileNotFoundError as exc:
        fail(str(exc))


def run_with_container(
    action: Callable[[Container], Awaitable[T]], *, check_keys: bool = True
) -> T:
    """Migrate the database, check that the server keys are the database's (unless
    `check_keys` is False: the `secrets` commands check what they need), then run
    `action(container)`; errors become one line."""
    from tidings.app.container import Container
    from tidings.app.fatal import report_fatal_signals
    from tidings.store import migrations

    settings = _settings()
    report_fatal_signals(settings.data_dir)  # SIGBUS from a failing data file: one line

    async def go() -> T:
        from tidings.services.audit import client_address

        client_address.set("cli")  # audit entries made here say so
        container = Container(settings)
        try:
            if check_keys:
                await container.services.secrets.check()
                # what admins configured at runtime (docs/identity.md), as the server has it
                await container.services.config.refresh(announce=False)
            return await action(container)
        finally:
            await container.close()

    try:
        migrations.upgrade(settings.db_url, create=False)
        return asyncio.run(go())
    except TidingsError as exc:
        fail(exc.message)
    except _one_line_errors() as exc:  # a setting, a key or the disk: one line
        fail(str(exc))


def _one_line_errors() -> tuple[type[Exception], ...]:
    """What a setting, a server key or the disk raise: printed as one line, exit 1."""
    from tidings.app.keys import BadKeyFile
    from tidings.app.plugins import PluginLoadError
    from tidings.services.keyring import NoKey, UnknownKey
    from tidings.services.secrets import KeyProblem
    from tidings.store.sql.engines import UnusableDatabase

    return (UnusableDatabase, OSError, KeyProblem, BadKeyFile, UnknownKey, NoKey, PluginLoadError)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print the token alone (for scripts).")]
