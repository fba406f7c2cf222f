"""`tidings incoming-webhooks ...` and `tidings commands ...` as an operator runs them,
beside a running server (SQLite, and PostgreSQL + Redis): the server is a real process,
the commands run in-process (typer's CliRunner) on its data directory and database."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from click.testing import Result

from tests.conftest import Backend, LiveServer
from tests.integration.cli.conftest import cli_at

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def printed(out: Result, what: str) -> str:
    found = re.search(rf"^{what}: (\S+)$", out.stdout, re.MULTILINE)
    assert found, out.stdout + out.stderr
    return found.group(1)


async def test_integrations_at_the_command_line(live_server: LiveServer, backend: Backend) -> None:
    env = {**backend.env, "TIDINGS_PUBLIC_URL": live_server.url}

    def cli(*args: str) -> Result:
        return cli_at(live_server.data_dir, *args, env=env)

    token = live_server.login()
    auth = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live_server.url + "/api/v1", headers=auth) as api:
        channel = {"kind": "channel", "name": "ops", "member_ids": []}
        r = await api.post("/conversations", json=channel)
        cid = r.json()["conversation"]["id"]

        out = await asyncio.to_thread(cli, "incoming-webhooks", "create", cid, "Alerts")
        assert out.exit_code == 0, out.stderr
        url = printed(out, "url")
        assert url.startswith(live_server.url + "/api/v1/hooks/")
        hook_id = url.split("/")[-2]
        async with httpx.AsyncClient() as anyone:
            assert (await anyone.post(url, json={"text": "from the CLI's URL"})).status_code == 200
            listed = await asyncio.to_thread(cli, "incoming-webhooks", "list")
            assert hook_id in listed.stdout and "Alerts" in listed.stdout
            rotated = await asyncio.to_thread(cli, "incoming-webhooks", "rotate", hook_id)
            new_url = printed(rotated, "url")
            assert (await anyone.post(url, json={"text": "old"})).status_code == 404
            assert (await anyone.post(new_url, json={"text": "new"})).status_code == 200
            off = await asyncio.to_thread(cli, "incoming-webhooks", "disable", hook_id)
            assert off.exit_code == 0
            assert (await anyone.post(new_url, json={"text": "off"})).status_code == 404
            gone = await asyncio.to_thread(cli, "incoming-webhooks", "delete", hook_id)
            assert gone.exit_code == 0
        page = (await api.get(f"/conversations/{cid}/messages")).json()["messages"]
        assert [m["body"] for m in page] == ["from the CLI's URL", "new"]

        missing = await asyncio.to_thread(cli, "incoming-webhooks", "create", "nope", "X")
        assert missing.exit_code == 1 and "conversation not found" in missing.stderr

        made = await asyncio.to_thread(
            cli, "commands", "create", "deploy", "--url", "https://ops.example.com/deploy",
            "--description", "deploy a service",
        )  # fmt: skip
        assert made.exit_code == 0, made.stderr
        assert printed(made, "signing secret")
        listed = await asyncio.to_thread(cli, "commands", "list")
        assert "/deploy" in listed.stdout and "https://ops.example.com/deploy" in listed.stdout
        seen = (await api.get("/commands")).json()["commands"]
        assert [c["name"] for c in seen] == ["deploy"]
        again = await asyncio.to_thread(cli, "commands", "create", "deploy", "--url", "https://x.io")
        assert again.exit_code == 1 and "exists" in again.stderr
        neither = await asyncio.to_thread(cli, "commands", "create", "other")
        assert neither.exit_code == 1
        assert (await asyncio.to_thread(cli, "commands", "secret", "deploy")).exit_code == 0
        assert (await asyncio.to_thread(cli, "commands", "disable", "deploy")).exit_code == 0
        assert (await api.get("/commands")).json()["commands"][0]["disabled"] is True
        assert (await asyncio.to_thread(cli, "commands", "delete", "/deploy")).exit_code == 0
        assert (await api.get("/commands")).json()["commands"] == []


def test_help_of_the_integration_commands(tmp_path: object) -> None:
    from pathlib import Path

    data = Path(str(tmp_path))
    for cmd in (
        ["commands"], ["commands", "list"], ["commands", "create"], ["commands", "delete"],
        ["incoming-webhooks"], ["incoming-webhooks", "list"], ["incoming-webhooks", "create"],
        ["incoming-webhooks", "rotate"],
    ):  # fmt: skip
        out = cli_at(data, *cmd, "--help")
        assert out.exit_code == 0 and "Usage" in out.stdout, cmd
