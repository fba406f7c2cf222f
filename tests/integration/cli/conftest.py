"""The in-process CLI: typer's CliRunner on the `container` fixture's data directory and
database (both backends)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from click.testing import CliRunner, Result

from tests.conftest import Backend, log_in_process
from tidings.app.container import Container
from tidings.cli.main import app

Cli = Callable[..., Result]
# typer builds the click command from the app at each invocation (half a second, all the
# commands' signatures); built once here, the same command `python -m tidings` runs
COMMAND = typer.main.get_command(app)
PASSWORD = "correct horse battery"


@pytest.fixture
def cli(container: Container, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on the container's data directory and database (in-process)."""
    if backend.database_url is not None:
        monkeypatch.setenv("TIDINGS_DATABASE_URL", backend.database_url)
    monkeypatch.delenv("TIDINGS_CONFIG", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    data = str(container.settings.data_dir)
    runner = CliRunner()

    def invoke(*args: str, **kw: Any) -> Result:  # kw: CliRunner's input= and env=
        try:
            return runner.invoke(
                COMMAND, [*args, "--data-dir", data], catch_exceptions=False, **kw
            )
        finally:  # a command that set up its own logging: the tests' again
            log_in_process()

    return invoke


def cli_at(data_dir: Path, *args: str, **kw: Any) -> Result:
    """The CLI in-process on `data_dir` (the environment's database: SQLite in it unless
    TIDINGS_DATABASE_URL is set); kw: CliRunner's input= and env=."""
    args_ = [*args, "--data-dir", str(data_dir)]
    return CliRunner().invoke(COMMAND, args_, catch_exceptions=False, **kw)


async def run(cli: Cli, *args: str, **kw: Any) -> Result:
    return await asyncio.to_thread(cli, *args, **kw)


async def ok(cli: Cli, *args: str) -> Result:
    result = await run(cli, *args)
    assert result.exit_code == 0, result.output
    return result


async def json(cli: Cli, *args: str) -> Any:
    return orjson.loads((await ok(cli, *args, "--json")).stdout)
