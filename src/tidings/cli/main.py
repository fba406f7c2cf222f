"""`tidings`: run the server and administer it."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

import tidings
from tidings.cli.audit import audit_app
from tidings.cli.backup import backup_app
from tidings.cli.bots import bot_app
from tidings.cli.common import (
    RootGroup,
    _one_line_errors,
    _settings,
    console,
    fail,
    state,
)
from tidings.cli.config import config_app
from tidings.cli.conversations import conversation_app
from tidings.cli.departments import dept_app
from tidings.cli.files import files_app
from tidings.cli.integrations import commands_app, hooks_app
from tidings.cli.jobs import jobs_app
from tidings.cli.ldap import ldap_app
from tidings.cli.oidc import oidc_app
from tidings.cli.plugins import plugins_app
from tidings.cli.scim import scim_app
from tidings.cli.search import search_app
from tidings.cli.secrets import secrets_app
from tidings.cli.users import user_app
from tidings.cli.webhooks import webhooks_app
from tidings.core.errors import TidingsError

app = typer.Typer(
    name="tidings",
    help="Tidings: self-hosted enterprise instant messaging.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=RootGroup,
)
app.add_typer(user_app, name="user")
app.add_typer(dept_app, name="dept")
app.add_typer(bot_app, name="bot")
app.add_typer(audit_app, name="audit")
app.add_typer(secrets_app, name="secrets")
app.add_typer(commands_app, name="commands")
app.add_typer(hooks_app, name="incoming-webhooks")
app.add_typer(oidc_app, name="oidc")
app.add_typer(jobs_app, name="jobs")
app.add_typer(files_app, name="files")
app.add_typer(ldap_app, name="ldap")
app.add_typer(plugins_app, name="plugins")
app.add_typer(backup_app, name="backup")
app.add_typer(scim_app, name="scim")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(config_app, name="config")
app.add_typer(search_app, name="search")
app.add_typer(conversation_app, name="conversation")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default ./tidings-data).", show_default=False),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (also TIDINGS_CONFIG).", show_default=False),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"tidings {tidings.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Tidings: self-hosted enterprise instant messaging."""
    state.data_dir = data_dir
    state.config = config


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    config: ConfigFile = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="gateway, api or worker; repeat for several (default: all three).",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="PEM certificate (chain): serve HTTPS and WSS."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
    ] = None,
    insecure_http: Annotated[
        bool | None,
        typer.Option(
            "--insecure-http",
            help="Serve plain HTTP on a non-loopback address (TLS ends at a proxy).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the server: every role in one process, on the embedded database by default.

    With TIDINGS_DATABASE_URL=postgresql://... and TIDINGS_REDIS_URL=redis://... (or the
    same keys in the settings file), nodes share PostgreSQL and Redis and can run behind
    a load balancer; see docs/deploy.md."""
    from tidings.app.server import serve as run

    if data_dir is not None:
        state.data_dir = data_dir
    if config is not None:
        state.config = config
    unknown = sorted(set(role or ()) - {"gateway", "api", "worker"})
    if unknown:
        fail(f"unknown role {unknown[0]!r}: use gateway, api or worker")
    settings = _settings(
        host=host,
        port=port,
        roles=sorted(set(role)) if role else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure_http=insecure_http,
    )
    from tidings.app.security import InsecureBind

    try:
        run(settings)
    except InsecureBind as exc:
        fail(str(exc), 2)
    except TidingsError as exc:  # e.g. an admin_password the password policy refuses
        fail(exc.message)
    except _one_line_errors() as exc:  # a setting, a key or the disk: one line
        fail(str(exc))


@app.command()
def migrate() -> None:
    """Create the database or bring it to the latest schema (Alembic's lines go to
    standard error as log lines: JSON with log_format=json)."""
    from tidings.app.fatal import report_fatal_signals
    from tidings.app.logging import configure_logging
    from tidings.store import migrations
    from tidings.store.sql.engines import UnusableDatabase

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    report_fatal_signals(settings.data_dir)
    try:
        migrations.upgrade(settings.db_url)
    except (OSError, UnusableDatabase) as exc:
        fail(str(exc))
    console.print(f"database at revision {migrations.current(settings.db_url)}")


def _mount_optional() -> None:
    try:
        from tidings.bench.cli import bench_app
    except ImportError:
        return
    app.add_typer(bench_app, name="bench")


@functools.cache
def command() -> Callable[[], object]:
    """The click command of `app`, with its optional part (`bench`), built once per
    process: typer builds it from every command function's signature, about a quarter
    of a second. The tests' zygote builds it before it forks (tests/zygote.py)."""
    _mount_optional()
    return typer.main.get_command(app)


def main() -> None:
    try:
        command()()
    except KeyboardInterrupt:
        sys.exit(130)
