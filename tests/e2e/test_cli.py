"""The admin command line, run as an operator would run it."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from click.testing import Result

from tests import processes
from tests.conftest import (
    PG_URL,
    REQUIRE_SERVICES,
    RUN_ID,
    Backend,
    LiveServer,
    _pg_url,
    free_port,
    require,
)
from tests.integration.cli.conftest import cli_at
from tidings.sdk import Client, StreamClosed
from tidings.sdk.bot import Bot

MIGRATIONS = Path(__file__).resolve().parents[2] / "src/tidings/store/migrations/versions"
pytestmark = pytest.mark.e2e


def tidings(
    data_dir: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m tidings --data-dir DATA ARGS`, forked by the test zygote."""
    return processes.run(
        ["--data-dir", str(data_dir), *args],
        {**os.environ, "COLUMNS": "200", **(env or {})},
        input=input,
        timeout=60,
    )


def real_tidings(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The same from a bare interpreter: the entry point as an operator starts it."""
    return subprocess.run(
        [sys.executable, "-m", "tidings", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_version_help_and_migrate_at_the_real_entry_point(tmp_path: Path) -> None:
    """`python -m tidings`: --version, a --help, and migrate naming the head revision
    (every command's --help and the admin commands: tests/integration/cli/)."""
    from tidings import __version__

    out = real_tidings(tmp_path, "--version")
    assert out.returncode == 0 and out.stdout.strip() == f"tidings {__version__}"
    out = real_tidings(tmp_path, "user", "create", "--help")
    assert out.returncode == 0 and "Usage:" in out.stdout
    out = real_tidings(tmp_path / "data", "migrate")
    head = sorted(p.name[:4] for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]
    assert out.returncode == 0 and f"revision {head}" in out.stdout


def test_cli_changes_reach_a_running_server(tmp_path: Path) -> None:
    """The server and the CLI share the data directory: a user made at the command line
    can log in, and the new password from reset-password works."""
    server = LiveServer(tmp_path / "data", free_port())
    server.start()
    try:
        assert (
            tidings(
                server.data_dir, "user", "create", "ops", "--password", "plum-orbit-12"
            ).returncode
            == 0
        )
        r = httpx.post(
            server.url + "/api/v1/auth/login", json={"username": "ops", "password": "plum-orbit-12"}
        )
        assert r.status_code == 200
        assert (
            tidings(
                server.data_dir, "user", "reset-password", "ops", "--password", "plum-orbit-45"
            ).returncode
            == 0
        )
        r = httpx.post(
            server.url + "/api/v1/auth/login", json={"username": "ops", "password": "plum-orbit-12"}
        )
        assert r.status_code == 401
    finally:
        server.stop()


def test_first_start_prints_the_generated_owner_password_once(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "TIDINGS_ADMIN_PASSWORD"}
    password = ""
    for attempt in range(2):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tidings",
                "serve",
                "--data-dir",
                str(data),
                "--port",
                str(port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            if attempt == 1:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/api/v1/auth/login",
                    json={"username": "admin", "password": password},
                )
                assert r.status_code == 200
        finally:
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=20)
        if attempt == 0:
            assert "with password: " in stdout
            password = stdout.split("with password: ", 1)[1].split()[0]
            assert password not in stderr  # printed once to the operator, never logged
            # its own block, delimited; and a file only the data dir's owner can read
            block = stdout.split("=" * 72)
            assert len(block) >= 3 and password in block[1], stdout
            kept = data / "initial-admin-password"
            assert stat.S_IMODE(kept.stat().st_mode) == 0o600
            assert f"password: {password}\n" in kept.read_text()
            assert str(kept) in block[1]
            for line in stderr.splitlines():  # the JSON logs
                if line.startswith("{"):
                    assert password not in line
        else:
            assert "with password" not in stdout
    assert password


def test_settings_from_toml_and_environment(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "tidings.toml"
    config.write_text(
        f'port = {port}\nmax_message_bytes = 10\nadmin_password = "toml-password-1"\n'
    )
    server = LiveServer(
        tmp_path / "data",
        port,
        env={"TIDINGS_CONFIG": str(config), "TIDINGS_ADMIN_PASSWORD": "env-wins-123"},
    )
    # The fixture passes --port itself; the TOML's limit and the env password apply.
    server.admin_password = "env-wins-123"
    server.start()
    try:
        token = server.login()
        h = {"authorization": f"Bearer {token}"}
        conv = httpx.post(
            server.url + "/api/v1/conversations", headers=h, json={"kind": "group", "name": "g"}
        ).json()["conversation"]
        r = httpx.post(
            server.url + f"/api/v1/conversations/{conv['id']}/messages",
            headers=h,
            json={"client_msg_id": "a", "body": "more than ten bytes"},
        )
        assert r.status_code == 413
    finally:
        server.stop()
    out = tidings(tmp_path / "d2", "migrate", env={"TIDINGS_MAX_MESSAGE_BYTES": "-5"})
    assert out.returncode == 1 and out.stderr.startswith("error: bad setting max_message_bytes")


def printed_token(out: Result) -> str:
    assert out.exit_code == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("token: ")]
    assert len(lines) == 1, out.stdout
    token = lines[0].removeprefix("token: ").strip()
    assert len(token) >= 40 and token not in out.stderr
    return token


async def test_bot_commands_and_tokens_against_a_running_server(
    live_server: LiveServer, backend: Backend
) -> None:
    """`tidings bot create` (in-process, on the running server's data directory and
    database) prints a token once; a Bot and a Client authenticate with it
    on the running server; `bot token` rotates it (the old one stops working, and the
    bot's live connections close, at once where the CLI and the server share Redis, else
    within the gateway's session check);
    `bot disable` ends it. On SQLite and on PostgreSQL + Redis. (The rules behind it, on
    both engines: tests/integration/api/test_bot_accounts.py.)"""
    env = backend.env
    data = live_server.data_dir

    def cli(*args: str) -> Result:
        return cli_at(data, *args, env=env)

    async def me_status(bearer: str) -> int:
        async with httpx.AsyncClient() as http:
            r = await http.get(
                live_server.url + "/api/v1/users/me", headers={"authorization": f"Bearer {bearer}"}
            )
        return r.status_code

    out = await asyncio.to_thread(cli, "bot", "create", "deploybot", "--display-name", "部署")
    assert "created bot deploybot" in out.stdout
    token = printed_token(out)

    async with Client(live_server.url, token=token) as client:
        me = await client.me()
    assert (me.username, me.display_name, me.bot) == ("deploybot", "部署", True)
    async with httpx.AsyncClient() as http:
        r = await http.post(
            live_server.url + "/api/v1/auth/login",
            json={"username": "deploybot", "password": token},
        )
    assert r.status_code == 401  # no password login for a bot, whatever is tried

    bot = Bot(live_server.url, token=token)
    serving = asyncio.create_task(bot.serve())
    await asyncio.wait_for(bot.wait_ready(), 20)
    # a plain WebSocket too, to see how it ends
    ws = await websockets.connect(live_server.ws_url)
    await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
    ready = orjson.loads(await ws.recv())
    assert ready["type"] == "ready" and ready["user"]["bot"] is True

    out = await asyncio.to_thread(cli, "bot", "list")
    assert out.exit_code == 0 and "deploybot" in out.stdout and "active" in out.stdout
    assert "(bot)" in (await asyncio.to_thread(cli, "user", "list")).stdout

    out = await asyncio.to_thread(cli, "bot", "token", "deploybot", "--quiet")
    assert out.exit_code == 0, out.stderr
    new_token = out.stdout.strip()
    assert len(new_token) >= 40 and new_token != token
    assert await me_status(token) == 401
    assert await me_status(new_token) == 200
    # With Redis the CLI publishes the cut on the bus the server listens to; beside an
    # embedded server the gateway finds the ended session itself (session_check_seconds,
    # 5 s by default). Either way the live connections close with 4003.
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(15):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
    with pytest.raises(StreamClosed):
        await asyncio.wait_for(serving, 20)
    await ws.close()
    again = await websockets.connect(live_server.ws_url)
    await again.send(orjson.dumps({"type": "auth", "token": token}).decode())
    with pytest.raises(websockets.ConnectionClosed) as refused:
        while True:
            await asyncio.wait_for(again.recv(), 10)
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4001

    out = await asyncio.to_thread(cli, "bot", "disable", "deploybot")
    assert out.exit_code == 0 and "disabled bot deploybot" in out.stdout
    assert await me_status(new_token) == 401
    out = await asyncio.to_thread(cli, "bot", "token", "deploybot")
    assert out.exit_code == 1 and "disabled" in out.stderr
    out = await asyncio.to_thread(cli, "bot", "token", "nobody")
    assert out.exit_code == 1 and out.stderr.startswith("error: no bot named 'nobody'")

    export = (await asyncio.to_thread(cli, "audit", "export")).stdout
    actions = [orjson.loads(line)["action"] for line in export.splitlines()]
    assert actions.count("bot_created") == 1 and actions.count("bot_token_rotated") == 1
    for secret in (token, new_token):  # never in the audit log or the server log
        assert secret not in export and secret not in live_server.logs()


ADMIN_COMMANDS = [
    ["user", "list"],
    ["user", "create", "alice", "--password", "plum-orbit-123", "--role", "member"],
    ["user", "disable", "admin"],
    ["user", "reset-totp", "admin"],
    ["dept", "list"],
    ["dept", "create", "R&D"],
    ["bot", "list"],
    ["bot", "create", "deploybot"],
    ["audit", "verify"],
    ["secrets", "rotate"],
    ["secrets", "status"],
    ["secrets", "generate", "--key-file"],
]


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    """A refusal: a non-zero exit and one line on stderr, no traceback."""
    assert out.returncode != 0, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    return lines[0]


def test_admin_commands_refuse_a_data_dir_without_a_database(tmp_path: Path) -> None:
    """A mistyped --data-dir creates nothing: only serve and migrate create a database."""
    typo = tmp_path / "typo"
    for cmd in ADMIN_COMMANDS:
        line = one_error_line(tidings(typo, *cmd))
        assert f"no database at {typo / 'tidings.db'}" in line, (cmd, line)
        assert "--data-dir" in line and "tidings migrate" in line
        assert not typo.exists(), cmd
    # an existing but empty folder (a mistyped path that happens to exist) is refused too
    typo.mkdir()
    one_error_line(tidings(typo, "user", "list"))
    assert list(typo.iterdir()) == []
    # migrate creates it; then the admin commands work
    assert tidings(typo, "migrate").returncode == 0
    out = tidings(typo, "user", "list")
    assert out.returncode == 0, out.stderr


def test_a_missing_postgresql_database_is_one_line(tmp_path: Path) -> None:
    require("PostgreSQL", PG_URL)
    name = f"tidings_missing_{RUN_ID}"
    env = {"TIDINGS_DATABASE_URL": _pg_url(name)}
    for cmd in (["migrate"], ["user", "list"], ["serve", "--port", str(free_port())]):
        line = one_error_line(tidings(tmp_path, *cmd, env=env))
        assert f'database "{name}" does not exist' in line, (cmd, line)
        assert "CREATE DATABASE" in line and "database_url" in line


def test_an_unsupported_database_url_is_one_line(tmp_path: Path) -> None:
    env = {"TIDINGS_DATABASE_URL": "mysql://tidings@127.0.0.1/tidings"}
    for cmd in (["migrate"], ["user", "list"], ["serve", "--port", str(free_port())]):
        line = one_error_line(tidings(tmp_path, *cmd, env=env))
        assert "unsupported scheme 'mysql'" in line and "postgresql://" in line, (cmd, line)


def test_a_read_only_data_dir_is_one_line_at_start(tmp_path: Path) -> None:
    """Tests run as root, where permissions do not stop writes: the folder is made
    immutable (chattr +i) instead, which stops root too."""
    data = tmp_path / "data"
    assert tidings(data, "migrate").returncode == 0
    if subprocess.run(["chattr", "+i", str(data)], capture_output=True).returncode != 0:
        reason = "chattr +i is not available on this file system"
        if REQUIRE_SERVICES:  # CI: nothing skips
            pytest.fail(reason + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    try:
        for cmd in (["serve", "--port", str(free_port())], ["migrate"], ["user", "list"]):
            line = one_error_line(tidings(data, *cmd))
            assert f"{data} is not writable" in line and "--data-dir" in line, (cmd, line)
    finally:
        subprocess.run(["chattr", "-i", str(data)], check=True)
    assert tidings(data, "user", "list").returncode == 0


def test_the_password_policy_applies_at_the_command_line_and_first_start(
    tmp_path: Path,
) -> None:
    """user create, user reset-password and the owner made at first start from
    TIDINGS_ADMIN_PASSWORD refuse a weak password in one line, and create nothing."""
    data = tmp_path / "data"
    assert tidings(data, "migrate").returncode == 0
    for password, why in (("12345678", "most common"), ("password1", "most common")):
        line = one_error_line(tidings(data, "user", "create", "alice", "--password", password))
        assert why in line, line
    line = one_error_line(tidings(data, "user", "create", "alice", "--password", "alice-2026"))
    assert "username" in line
    assert "alice" not in tidings(data, "user", "list").stdout
    out = tidings(data, "user", "create", "alice", "--password", "correct horse battery staple")
    assert out.returncode == 0, out.stderr
    line = one_error_line(tidings(data, "user", "reset-password", "alice", "--password", " " * 8))
    assert "spaces" in line

    fresh = tmp_path / "fresh"
    env = {"TIDINGS_ADMIN_PASSWORD": "password1"}
    out = tidings(fresh, "serve", "--port", str(free_port()), env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr  # after the migrations' lines:
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: admin_password (TIDINGS_ADMIN_PASSWORD) is refused"), line
    assert "most common" in line
    assert "password1" not in line
    assert "admin" not in tidings(fresh, "user", "list").stdout
