"""RabbitMQ for the tests: the machine's broker (127.0.0.1:5672, guest/guest) with a
queue prefix of each test's own, and a private broker a test may stop and start again
(its own Erlang node, port and data directory, so restarting it touches no other test)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES, free_port, require

AMQP_URL = os.environ.get("TIDINGS_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def require_rabbitmq() -> str:
    require("RabbitMQ", AMQP_URL)
    return AMQP_URL


def unique_prefix() -> str:
    return f"tidings-test-{uuid.uuid4().hex[:10]}"


async def delete_prefix(url: str, prefix: str, queues: list[str]) -> None:
    from tidings.queue.rabbitmq import RabbitQueue

    queue = RabbitQueue(url, prefix, queues)
    try:
        await queue.start()
        await queue.delete_everything()
    finally:
        await queue.close()


class PrivateRabbit:
    """A RabbitMQ node of this test alone (`rabbitmq-server` from Debian's package, as
    the machine's runs): start, stop (SIGTERM, or SIGKILL: a crash), start again on the
    same port and data, so that durable queues and persistent messages must survive."""

    def __init__(self, base: Path) -> None:
        if not Path(RABBITMQ_SERVER).exists() or shutil.which("epmd") is None:
            message = f"{RABBITMQ_SERVER} (Debian rabbitmq-server) is not installed"
            if REQUIRE_SERVICES:
                pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
            pytest.skip(message)
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        self.port = free_port()
        self.name = f"tidings-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        b = self.base
        return {
            **os.environ,
            "HOME": str(b),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(b / "pid"),
        }

    def start(self, timeout: float = 60.0) -> None:
        log = (self.base / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {self.logs()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"rabbitmq-server did not listen in {timeout}s: {self.logs()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)  # the script, beam.smp and its children
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the port is free again
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                time.sleep(0.2)
            except OSError:
                return

    def logs(self) -> str:
        path = self.base / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""
