"""deploy/local-cluster.sh, as an admin runs it (docs/deploy.md, "A cluster on one
machine"): it creates a database that does not exist and comes up; it fails fast, in
one line, when PostgreSQL cannot be reached; a node that exits or is not ready in time
stops it with that node's log shown and kept, and a non-zero exit."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL, REDIS_URL, _pg, _redis_clear, free_port, require
from tests.e2e.cluster import haproxy_binary

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "local-cluster.sh"
KEPT = re.compile(r"logs kept in (\S+)")


def free_port_run(count: int = 4) -> int:
    """A port P with P .. P+count-1 all free (the balancer's, then the nodes')."""
    for _ in range(200):
        base = random.randint(20000, 60000)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise RuntimeError("no run of free ports")


@contextlib.contextmanager
def fresh_database_name() -> Iterator[str]:
    name = f"tidings_lc_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def script_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TIDINGS_ARGON2_TIME_COST": "1",
        "TIDINGS_ARGON2_MEMORY_KIB": "1024",
        "TIDINGS_ADMIN_PASSWORD": "local-cluster-test-password",
        "TIDINGS_REDIS_PREFIX": f"lc-test-{uuid.uuid4().hex[:8]}",
        "LB_PORT": str(free_port_run()),
        **extra,
    }


def run_to_failure(args: list[str], env: dict[str, str], within: float) -> tuple[int, str, float]:
    """Run the script until it exits by itself (it must, within `within` seconds); in its
    own session, so that whatever it started is stopped with it if it does not."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(SCRIPT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=within)
    finally:
        stop_session(proc)
    return proc.returncode, output, time.monotonic() - started


def stop_session(proc: subprocess.Popen[str]) -> None:
    """Whatever is left of the script's session (nothing, when it cleaned up): asked to
    stop first (the script then removes its logs), then killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def kept_logs(output: str) -> Iterator[Path]:
    found = KEPT.search(output)
    assert found is not None, output
    kept = Path(found.group(1))
    try:
        yield kept
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_missing_database_is_created_and_the_cluster_comes_up() -> None:
    require("PostgreSQL", PG_URL)
    require("Redis", REDIS_URL)
    haproxy_binary()
    with fresh_database_name() as name:
        env = script_env(START_TIMEOUT="90")
        proc = subprocess.Popen(
            [str(SCRIPT), database_url(name), REDIS_URL],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 100
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if line.startswith("cluster ready"):
                    break
            output = "".join(lines)
            assert f"database {name} at" in output and ": created" in output, output
            assert lines and lines[-1].startswith("cluster ready"), output
            url = f"http://127.0.0.1:{env['LB_PORT']}"
            assert httpx.get(url + "/readyz", timeout=10).status_code == 200
            login = httpx.post(
                url + "/api/v1/auth/login",
                json={"username": "admin", "password": env["TIDINGS_ADMIN_PASSWORD"]},
                timeout=10,
            )
            assert login.status_code == 200, login.text
            nodes = [int(p) for p in re.findall(r"node\d: pid (\d+)", output)]
            assert len(nodes) == 3, output
            proc.send_signal(signal.SIGTERM)  # as Ctrl-C would: everything stops
            assert proc.wait(30) == 143
            deadline = time.monotonic() + 10
            while any(alive(pid) for pid in nodes) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(alive(pid) for pid in nodes), nodes
        finally:
            stop_session(proc)
            _redis_clear(env["TIDINGS_REDIS_PREFIX"])


def test_unreachable_postgresql_fails_fast_in_one_line() -> None:
    closed = free_port()
    code, output, took = run_to_failure(
        [f"postgresql://postgres@127.0.0.1:{closed}/tidings_cluster", REDIS_URL],
        script_env(),
        within=60,
    )
    assert code == 1, output
    assert f"local-cluster: error: cannot connect to PostgreSQL at 127.0.0.1:{closed}" in output
    assert "node1" not in output and "Traceback" not in output, output
    assert took < 30, took


def test_a_node_that_exits_is_shown_with_its_log_kept() -> None:
    require("PostgreSQL", PG_URL)
    with fresh_database_name() as name:
        env = script_env(TIDINGS_ARGON2_TIME_COST="0")  # refused by every node
        code, output, _took = run_to_failure([database_url(name), REDIS_URL], env, within=90)
        assert code == 1, output
        assert "local-cluster: error: node1 exited with status 1 before it was ready" in output
        assert "| error: bad setting argon2_time_cost" in output, output  # its log's tail
        with kept_logs(output) as kept:
            assert "bad setting argon2_time_cost" in (kept / "node1.log").read_text()


def test_a_node_not_ready_in_time_is_shown_and_the_script_stops() -> None:
    require("PostgreSQL", PG_URL)
    with fresh_database_name() as name:
        unreachable_redis = f"redis://127.0.0.1:{free_port()}/0"
        env = script_env(START_TIMEOUT="8")
        code, output, took = run_to_failure([database_url(name), unreachable_redis], env, within=90)
        assert code == 1, output
        assert "local-cluster: error: node1 was not ready within 8s (START_TIMEOUT)" in output
        assert '"bus":"ConnectionError' in output, output  # what /readyz said
        assert took < 60, took
        with kept_logs(output) as kept:
            assert (kept / "node1.log").exists()
