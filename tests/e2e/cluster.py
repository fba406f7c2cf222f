"""A cluster for tests: several real nodes on one PostgreSQL database and one Redis
prefix, behind a real HAProxy (installed from Debian's packages by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES, Backend, LiveServer, free_port

HAPROXY_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if found is None:
        message = "haproxy is not installed (apt-get install haproxy)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return found


class Cluster:
    def __init__(self, root: Path, backend: Backend, nodes: int = 3) -> None:
        assert backend.database_url is not None
        self.root = root
        self.nodes = [
            LiveServer(
                root / f"node{i}" / "data",
                free_port(),
                env={**backend.env, "TIDINGS_NODE_NAME": f"node{i}"},
            )
            for i in range(nodes)
        ]
        for node in self.nodes:
            node.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self.haproxy: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        """The shipped deploy/haproxy.cfg, with this test's ports and without TLS."""
        text = HAPROXY_TEMPLATE.read_text()
        servers = "\n".join(
            f"    server node{i} 127.0.0.1:{n.port} check" for i, n in enumerate(self.nodes)
        )
        start = text.index("    # nodes-begin")
        end = text.index("    # nodes-end")
        text = text[:start] + servers + "\n" + text[end:]
        tls = (
            "    bind :443 ssl crt /etc/tidings/tls/tidings.pem alpn http/1.1\n"
            "    bind :80\n"
            "    http-request redirect scheme https code 301 if !{ ssl_fc }\n"
        )
        assert tls in text and "    maxconn 100000\n" in text
        text = text.replace("    maxconn 100000\n", "    maxconn 2000\n")  # this sandbox's FD limit
        return text.replace(tls, f"    bind 127.0.0.1:{self.port}\n")

    def start(self) -> None:
        binary = haproxy_binary()
        for node in self.nodes:
            node.start()
        cfg = self.root / "haproxy.cfg"
        cfg.write_text(self.config())
        check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log = (self.root / "haproxy.log").open("ab")
        self.haproxy = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("haproxy did not come up")

    def connections(self) -> list[int]:
        counts = []
        for node in self.nodes:
            try:
                counts.append(
                    int(httpx.get(node.url + "/healthz", timeout=2).json()["connections"])
                )
            except httpx.HTTPError:
                counts.append(-1)
        return counts

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        for node in self.nodes:
            node.stop()
