"""A real Prometheus (Debian's `prometheus`) scrapes a real `tidings serve` process; the
test reads the values back through Prometheus's HTTP API after some sends. The alerting
rules of deploy/prometheus/ pass `promtool check rules` and their unit tests, Prometheus
loads them, and every query of the Grafana dashboard is valid PromQL to it."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ARTIFACTS, REQUIRE_SERVICES, LiveServer, World, free_port
from tests.integration.app.test_dashboards import DASHBOARDS, queries

pytestmark = pytest.mark.e2e
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is missing (Debian package prometheus: apt-get install prometheus)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return path


def test_alerting_rules_check_and_pass_their_unit_tests() -> None:
    promtool = tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", "tidings-alerts.yml"],
        cwd=DEPLOY, capture_output=True, text=True, timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "tidings-alerts.test.yml"],
        cwd=DEPLOY, capture_output=True, text=True, timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    rules = (DEPLOY / "tidings-alerts.yml").read_text()
    for alert in ("TidingsNodeDown", "TidingsEventLag", "TidingsCommitLatency",
                  "TidingsDeadLetters", "TidingsDiskFilling"):
        assert f"alert: {alert}" in rules
        assert alert in (DEPLOY / "tidings-alerts.test.yml").read_text()
    config = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=DEPLOY, capture_output=True, text=True, timeout=60,
    )
    assert config.returncode == 0, config.stdout + config.stderr


class Prometheus:
    """A Prometheus process of the test's own: loopback, its own data directory, a
    one-second scrape of one Tidings node, the project's alerting rules."""

    def __init__(self, workdir: Path, target_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEPLOY / "tidings-alerts.yml", workdir / "tidings-alerts.yml")
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "rule_files: [tidings-alerts.yml]\n"
            "scrape_configs:\n"
            "  - job_name: tidings\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.data = workdir / "tsdb"
        self.log_path = ARTIFACTS / f"prometheus-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = tool("prometheus")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not get ready in 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def query(self, expr: str) -> dict[str, Any]:
        r = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        data: dict[str, Any] = r.json()
        assert data.get("status") == "success", (expr, data)
        return data

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=10).json()

    def value(self, expr: str) -> float | None:
        result = self.query(expr)["data"]["result"]
        return None if not result else float(result[0]["value"][1])

    async def wait_for(self, expr: str, check: Any, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = await asyncio.to_thread(self.value, expr)
            if seen is not None and check(seen):
                return seen
            await asyncio.sleep(0.5)
        raise AssertionError(f"{expr}: {seen} after {timeout} s")


@pytest.fixture
def scraped_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Prometheus]]:
    tool("prometheus")
    server = LiveServer(tmp_path / "data", free_port())
    server.start()
    prometheus = Prometheus(tmp_path / "prometheus", server.port)
    try:
        prometheus.start()
        yield server, prometheus
    finally:
        prometheus.stop()
        server.stop()


async def test_prometheus_scrapes_a_server_and_reads_its_values(
    scraped_server: tuple[LiveServer, Prometheus],
) -> None:
    server, prometheus = scraped_server
    await prometheus.wait_for('up{job="tidings"}', lambda v: v == 1)
    world = World(server)
    try:
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        ws_ann, ws_ben = await world.ws(ann), await world.ws(ben)
        for i in range(12):
            assert (await ws_ann.send_message(cid, f"scraped {i}"))["type"] == "ack"
        for _ in range(12):
            await ws_ben.event("message")
        async with httpx.AsyncClient() as c:
            r = await c.post(
                server.url + "/api/v1/auth/login", json={"username": "ben", "password": "nope"}
            )
        assert r.status_code == 401

        acked = await prometheus.wait_for(
            "tidings_sends_acknowledged_total", lambda v: v >= 12
        )
        assert acked == 12
        await prometheus.wait_for(
            'tidings_ws_frames_received_total{type="send"}', lambda v: v == 12
        )
        await prometheus.wait_for(
            'sum(tidings_connections{role="gateway",state="authenticated"})', lambda v: v == 2
        )
        await prometheus.wait_for("tidings_commit_batch_size_sum", lambda v: v == 12)
        await prometheus.wait_for("tidings_commit_duration_seconds_count", lambda v: v >= 1)
        await prometheus.wait_for(
            'tidings_logins_total{method="password",outcome="invalid_credentials"}',
            lambda v: v == 1,
        )
        await prometheus.wait_for("tidings_event_stream_lag_events", lambda v: v == 0)
        await prometheus.wait_for("tidings_jobs_dead", lambda v: v == 0)
        await prometheus.wait_for("process_resident_memory_bytes", lambda v: v > 1e6)
        await prometheus.wait_for("process_open_fds", lambda v: v > 0)
        await prometheus.wait_for(
            "histogram_quantile(0.99, sum by (le) "
            "(rate(tidings_commit_duration_seconds_bucket[1m])))",
            lambda v: v > 0,
        )
        # the rules are loaded and evaluate without error
        rules = (await asyncio.to_thread(prometheus.get, "/api/v1/rules"))
        loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
        assert {r["name"] for r in loaded} >= {
            "TidingsNodeDown", "TidingsEventLag", "TidingsCommitLatency",
            "TidingsDeadLetters", "TidingsDiskFilling",
        }
        deadline = time.monotonic() + 20
        while any(r.get("health") != "ok" for r in loaded) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            rules = await asyncio.to_thread(prometheus.get, "/api/v1/rules")
            loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
        assert [r["name"] for r in loaded if r.get("health") != "ok"] == []
        # every dashboard query is PromQL Prometheus accepts
        for path in sorted(DASHBOARDS.glob("*.json")):
            for where, expr in queries(json.loads(path.read_text(encoding="utf-8"))):
                if expr.startswith("label_values("):
                    continue  # Grafana's, not PromQL
                concrete = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
                await asyncio.to_thread(prometheus.query, concrete)  # asserts success
                assert where
    finally:
        await world.close()
    # scraping wrote no error to the server's log
    assert "metrics_read_failed" not in server.logs()
