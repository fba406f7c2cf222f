"""What every `tidings` command shares: the consoles, plain output, one-line failures,
the global options' state, the settings, and running an action on a container (the
command modules import these from here, and cli/main.py mounts the modules)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from tidings.core.errors import TidingsError

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.app.settings import Settings

T = TypeVar("T")
console = Console()
err = Console(stderr=True)


class _State:
    data_dir: Path | None = None
    config: Path | None = None


state = _State()


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
