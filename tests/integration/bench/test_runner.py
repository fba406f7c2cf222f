"""`tidings bench` at small sizes against the real server: every check must pass.

Figures (latency, CPU) are not asserted here: they depend on the machine and are
recorded in docs/benchmarks.md. What is asserted is what the scenarios check:
nothing lost, duplicated or out of order, and that the measurements are present.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tidings.bench import Options, run

SRC = Path(__file__).resolve().parents[3] / "src"


def options(live_server: Any, **sizes: Any) -> Options:
    return Options(
        url=live_server.url,
        server_pid=live_server.pid,
        admin_username=live_server.admin_username,
        admin_password=live_server.admin_password,
        progress=False,
        drain_timeout=10,
        **sizes,
    )


def assert_clean(result: dict[str, Any]) -> None:
    assert result["ok"], result
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["out_of_order"] == 0
    assert result["errors"] == []


async def test_latency(live_server: Any) -> None:
    result = await run("latency", options(live_server, pairs=3, messages=6))
    assert_clean(result)
    assert result["messages_sent"] == 18
    assert result["deliveries"] == 36  # recipient + the sender's own connection
    assert result["latency_samples"] == 18
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"] <= result["latency_max_ms"]
    assert result["server_cpu_s"] is not None and result["server_rss_end_mib"] > 0


async def test_fanout(live_server: Any) -> None:
    result = await run(
        "fanout", options(live_server, members=8, senders=3, per_sender=20, in_flight=5)
    )
    assert_clean(result)
    assert result["messages_sent"] == 60
    assert result["deliveries"] == result["expected_deliveries"] == 60 * 8
    assert result["persisted_ok"] and result["persisted_last_seq"] == 60
    assert result["server_cpu_ms_per_1000_deliveries"] is not None
    assert result["deliveries_per_s"] > 0


async def test_connections(live_server: Any) -> None:
    result = await run(
        "connections",
        options(live_server, connections=60, distinct_users=False, connection_users=6, hold=0.5),
    )
    assert_clean(result)
    assert result["opened"] == result["alive_after_hold"] == 60
    assert result["accounts"] == 6 and result["distinct_users"] is False
    assert result["failed"] == 0
    assert result["server_kib_per_connection"] is not None


async def test_connections_of_distinct_users(live_server: Any) -> None:
    """The default: every connection its own account and token, 20 opened at a time."""
    result = await run(
        "connections", options(live_server, connections=60, connect_concurrency=20, hold=0.5)
    )
    assert_clean(result)
    assert result["distinct_users"] is True and result["accounts"] == 60
    assert result["opened"] == result["alive_after_hold"] == 60
    assert result["failed"] == 0 and result["failed_close_codes"] == {}
    assert result["server_cpu_ms_per_connection"] is not None
    assert result["server_kib_per_connection"] is not None


async def test_soak_with_resumes(live_server: Any) -> None:
    result = await run(
        "soak",
        options(live_server, duration=4, soak_users=6, rate=40, reconnect_every=0.5),
    )
    assert_clean(result)
    assert result["resumes"] >= 3 and result["resume_errors"] == 0
    assert result["messages_sent"] > 50
    assert result["deliveries"] == result["expected_deliveries"]


def test_cli_spawn_json() -> None:
    """`tidings bench latency --spawn --json` starts its own server and prints one line."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("TIDINGS_ADMIN_PASSWORD", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tidings",
            "bench",
            "latency",
            "--spawn",
            "--json",
            "--pairs",
            "2",
            "--messages",
            "4",
        ],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    result = orjson.loads(lines[0])
    assert result["spawned"] and result["ok"]
    assert result["messages_sent"] == 8 and result["server_cpu_s"] is not None


async def test_files(live_server: Any) -> None:
    result = await run("files", options(live_server, file_size_mib=4, images=10, idle_sends=10))
    assert result["ok"], result
    assert result["errors"] == [] and result["send_errors"] == 0
    assert result["large_sha256_ok"] and result["large_size_ok"]
    assert result["large_upload_mb_per_s"] > 0 and result["large_download_mb_per_s"] > 0
    assert result["large_upload_server_rss_growth_mib"] is not None
    assert result["images_uploaded"] == result["thumbnails_ready"] == 10
    assert result["thumbnails_all_ready_s"] is not None
    assert result["idle_send_samples"] == 10 and result["busy_send_samples"] >= 1
    assert 0 < result["idle_send_p50_ms"] <= result["idle_send_p99_ms"]
