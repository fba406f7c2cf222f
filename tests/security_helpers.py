"""Helpers of the security tests: real servers with chosen settings, raw logins (to an
in-process server too), TOTP codes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp

from tests.conftest import ARTIFACTS, LiveServer, free_port
from tests.helpers import Api, http_client
from tidings.core.clock import Clock


@contextlib.contextmanager
def server_with(tmp_path: Path, env: dict[str, str], name: str = "data") -> Iterator[LiveServer]:
    """A real server whose settings come from TIDINGS_* variables in `env`."""
    server = LiveServer(tmp_path / name, free_port(), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())


async def raw_login(
    base_url: str,
    username: str,
    password: str,
    *,
    totp: str | None = None,
    device: str | None = None,
    address: str | None = None,
    verify: Any = True,
) -> httpx.Response:
    """POST /auth/login; `address` poses as a client behind the (trusted) local proxy."""
    body: dict[str, str] = {"username": username, "password": password}
    if totp is not None:
        body["totp"] = totp
    if device is not None:
        body["device"] = device
    headers = {"x-forwarded-for": address} if address else {}
    async with http_client(base_url, verify=verify) as client:
        return await client.post("/api/v1/auth/login", json=body, headers=headers)


def api_from(base_url: str, response: httpx.Response) -> Api:
    assert response.status_code == 200, response.text
    data = response.json()
    return Api(base_url, data["token"], data["user"])


def code_at(secret: str, offset_steps: int = 0) -> str:
    """The TOTP code `offset_steps` 30-second steps from now (the server accepts ±1)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def step_now(clock: Clock | None = None) -> int:
    """The current 30-second TOTP step, of the real time or of the server's `clock`."""
    now = clock.now().timestamp() if clock is not None else time.time()
    return int(now) // 30


def code_for(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * 30)


async def enrol_totp(
    api: Api, password: str, clock: Clock | None = None
) -> tuple[str, list[str], int]:
    """Enrol a second factor over the API (`password`: the account's, which enrolling
    needs); returns the secret, the recovery codes and
    the current step s. It is enabled with the code of step s - 1, so that the codes of
    s and s + 1 are still unused (each code is accepted once, and only later steps after
    it) and valid for at least 35 s: on real time it waits for the next step if this one
    is old; on the server's `clock` (one the test moves) they stay valid until moved."""
    if clock is None and time.time() % 30 > 25:
        await asyncio.sleep(30.5 - time.time() % 30)
    setup = await api.post("/auth/totp/setup", {"password": password})
    secret = setup["secret"]
    step = step_now(clock)
    enabled = await api.post(
        "/auth/totp/enable", {"password": password, "code": code_for(secret, step - 1)}
    )
    return secret, enabled["recovery_codes"], step
