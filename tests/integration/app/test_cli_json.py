"""`--json` on the listing commands (jobs, plugins, webhooks deliveries, secrets status,
commands, incoming-webhooks, backup status and list), run in-process with typer's
CliRunner against the same data directory and database as the services (both
backends): each prints one JSON document a script can read, the shapes of the REST API
where there is one, nothing cut when stdout is not a terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from click.testing import CliRunner, Result

from tests.conftest import Backend
from tidings.app.container import Container
from tidings.cli.main import app
from tidings.core.models import ConversationKind, OrgRole
from tidings.services.backup import BackupStatus

Cli = Callable[..., Result]
# typer builds the click command from the app at each invocation (half a second, all the
# commands' signatures); built once here, the same command `python -m tidings` runs
COMMAND = typer.main.get_command(app)


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"webhook_allowed_networks": "127.0.0.0/8"}


@pytest.fixture
def cli(container: Container, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on the container's data directory and database (in-process)."""
    if backend.database_url is not None:
        monkeypatch.setenv("TIDINGS_DATABASE_URL", backend.database_url)
    monkeypatch.delenv("TIDINGS_CONFIG", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    data = str(container.settings.data_dir)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(COMMAND, [*args, "--data-dir", data], catch_exceptions=False)

    return invoke


async def run(cli: Cli, *args: str, code: int = 0) -> Any:
    result = await asyncio.to_thread(cli, *args, "--json")
    assert result.exit_code == code, result.output
    return orjson.loads(result.stdout)


async def test_listing_commands_print_json(cli: Cli, container: Container) -> None:
    svc = container.services
    owner = await svc.users.create(None, "olga", "plum-orbit-123", role=OrgRole.OWNER)
    conv, _ = await svc.conversations.create(owner, ConversationKind.GROUP, [], "ops")
    long_name = "Alerts from the monitoring system " + "x" * 46  # 80: a table wider than 80
    hook, _ = await svc.incoming_webhooks.create(None, conv.id, long_name)
    await svc.commands.create(None, "deploy", url="https://ops.example.com/deploy")
    made = await svc.webhooks.create(owner, "http://127.0.0.1:9/hook", ["message"], None)

    hooks = await run(cli, "incoming-webhooks", "list")
    assert [(h["id"], h["name"], h["url"]) for h in hooks] == [(hook.id, long_name, None)]
    assert hooks[0]["conversation_id"] == conv.id and hooks[0]["posts"] == 0
    table = await asyncio.to_thread(cli, "incoming-webhooks", "list")
    assert long_name in table.stdout  # not a terminal: the whole name, on one line

    commands = await run(cli, "commands", "list")
    assert [(c["name"], c["url"], c["disabled"]) for c in commands] == [
        ("deploy", "https://ops.example.com/deploy", False)
    ]
    assert commands[0]["target"] == "url" and "signing_secret" not in str(commands)

    assert await run(cli, "webhooks", "deliveries", made.webhook.id) == []
    missing = await asyncio.to_thread(cli, "webhooks", "deliveries", "nope", "--json")
    assert missing.exit_code == 1 and missing.stdout == ""

    jobs = await run(cli, "jobs", "list")
    assert isinstance(jobs, list)
    assert all({"id", "kind", "state", "attempts"} <= set(j) for j in jobs)
    stats = await run(cli, "jobs", "list", "--stats")
    assert "dead" in stats

    keys = await run(cli, "secrets", "status")
    assert keys["held"] and keys["audit_head"] in (None, *keys["held"])
    assert set(keys["webhooks"]) <= set(keys["held"])  # the webhook's sealed signing secret
    assert sum(keys["webhooks"].values()) == 1 and sum(keys["commands"].values()) == 1
    assert container.keyring.current().id in keys["held"]

    plugins = await run(cli, "plugins", "list")
    assert plugins["loaded"] == [] and isinstance(plugins["plugins"], list)


def two_archives(backups: Path) -> None:
    backups.mkdir(parents=True)
    for name in (
        "tidings-backup-20260101T000000Z.tar.gz",
        "tidings-backup-20260102T000000Z.tar.gz",
    ):
        (backups / name).write_bytes(b"x" * 10)
    (backups / "notes.txt").write_text("not a backup")


async def test_backup_status_and_list_print_json(cli: Cli, container: Container) -> None:
    assert await run(cli, "backup", "status") == {"last": None}
    assert await run(cli, "backup", "list") == []
    await asyncio.to_thread(two_archives, container.settings.backups_dir)
    listed = await run(cli, "backup", "list")
    assert [(b["file"], b["at"], b["bytes"]) for b in listed] == [
        ("tidings-backup-20260102T000000Z.tar.gz", "2026-01-02T00:00:00+00:00", 10),
        ("tidings-backup-20260101T000000Z.tar.gz", "2026-01-01T00:00:00+00:00", 10),
    ]
    at = datetime(2026, 1, 2, tzinfo=UTC)
    await container.services.backups.record(
        BackupStatus(at=at, ok=False, file="x.tar.gz", scheduled=True, error="disk full")
    )
    last = (await run(cli, "backup", "status", code=1))["last"]
    assert (last["ok"], last["error"], last["scheduled"]) == (False, "disk full", True)
