"""Start a throw-away Tidings server for ``tidings bench --spawn``."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SpawnedServer:
    """A ``python -m tidings serve`` child process on a temporary data directory."""

    url: str
    pid: int
    admin_username: str
    admin_password: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, SIGKILL if needed; then remove the data directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def spawn_server(
    *,
    extra_args: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = 60.0,
    python: str | None = None,
    root: Path | None = None,
) -> SpawnedServer:
    """Start ``python -m tidings serve --data-dir TMP --port FREE`` and wait for /healthz.

    ``root``: a directory prepared beforehand (its ``data`` directory holds a database
    made for the run, bench/search.py), used instead of a new one and removed likewise."""
    data_dir = root or Path(tempfile.mkdtemp(prefix="tidings-bench-"))
    port = free_port()
    password = "bench-" + secrets.token_urlsafe(12)
    env = dict(os.environ)
    env["TIDINGS_ADMIN_PASSWORD"] = password
    env.update(extra_env or {})
    log_path = data_dir / "server.log"
    log_file = log_path.open("wb")
    cmd = [
        python or sys.executable,
        "-m",
        "tidings",
        "serve",
        "--data-dir",
        str(data_dir / "data"),
        "--port",
        str(port),
        *(extra_args or []),
    ]
    # Popen returns as soon as the child is forked; the server outlives this coroutine.
    process = subprocess.Popen(  # noqa: ASYNC220
        cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
    )
    log_file.close()
    server = SpawnedServer(
        url=f"http://127.0.0.1:{port}",
        pid=process.pid,
        admin_username="admin",
        admin_password=password,
        data_dir=data_dir,
        log_path=log_path,
        process=process,
    )
    deadline = time.monotonic() + startup_timeout
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
        while True:
            if process.poll() is not None:
                tail = server.log_tail()
                server.stop()
                raise RuntimeError(f"server exited with {process.returncode}:\n{tail}")
            try:
                response = await http.get(server.url + "/healthz")
                if response.status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                tail = server.log_tail()
                server.stop()
                raise RuntimeError(f"server not healthy after {startup_timeout}s:\n{tail}")
            await asyncio.sleep(0.1)
