"""A cluster for tests: several real nodes on one PostgreSQL database and one Redis
prefix, behind a real HAProxy (installed from Debian's packages by .ci/run)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES, Backend, LiveServer, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
HAPROXY_TEMPLATE = DEPLOY / "haproxy.cfg"
NGINX_TEMPLATE = DEPLOY / "nginx.conf"


def binary(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if found is None:
        message = f"{name} is not installed (apt-get install {name})"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return found


def haproxy_binary() -> str:
    return binary("haproxy")


class Cluster:
    def __init__(
        self, root: Path, backend: Backend, nodes: int = 3, balancer: str = "haproxy"
    ) -> None:
        self.balancer = balancer
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
        scheme = "https" if balancer == "nginx" else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{scheme.replace('http', 'ws')}://127.0.0.1:{self.port}/api/v1/ws"
        self.haproxy: subprocess.Popen[bytes] | None = None  # the balancer's process
        self.certificate: Path | None = None

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

    def nginx_config(self, cert: Path, key: Path) -> str:
        """The shipped deploy/nginx.conf with this test's ports, paths and certificate."""
        text = NGINX_TEMPLATE.read_text()
        for i in (1, 2, 3):
            line = f"        server node{i}:8000 max_fails=2 fail_timeout=5s;\n"
            assert line in text
            text = text.replace(line, "" if i > 1 else "{servers}")
        servers = "".join(
            f"        server 127.0.0.1:{n.port} max_fails=2 fail_timeout=5s;\n" for n in self.nodes
        )
        plain = (
            "    server {\n        listen 80;\n"
            "        return 301 https://$host$request_uri;\n    }\n\n"
        )
        replacements = {
            "{servers}": servers,
            plain: "",
            "listen 443 ssl;": f"listen 127.0.0.1:{self.port} ssl;",
            "/etc/tidings/tls/fullchain.pem": str(cert),
            "/etc/tidings/tls/privkey.pem": str(key),
            "worker_processes auto;": "worker_processes 1;",
            "worker_connections 65536;": "worker_connections 1024;",
        }
        for old, new in replacements.items():
            assert old in text, old
            text = text.replace(old, new)
        return text

    def _start_nginx(self) -> None:
        nginx = binary("nginx")
        cert, key = self.root / "cert.pem", self.root / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        cfg = self.root / "nginx.conf"
        cfg.write_text(self.nginx_config(cert, key))
        prefix = self.root / "nginx"
        for sub in ("", "logs", "tmp"):
            (prefix / sub).mkdir(exist_ok=True)
        directives = f"daemon off; pid {prefix}/nginx.pid; error_log {prefix}/logs/error.log;"
        args = [nginx, "-p", str(prefix), "-c", str(cfg), "-g", directives]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log = (self.root / "nginx.log").open("ab")
        self.haproxy = subprocess.Popen(args, stdout=log, stderr=log)
        self.certificate = cert

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        if self.balancer == "nginx":
            self._start_nginx()
        else:
            haproxy = haproxy_binary()
            cfg = self.root / "haproxy.cfg"
            cfg.write_text(self.config())
            check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr
            log = (self.root / "haproxy.log").open("ab")
            self.haproxy = subprocess.Popen(
                [haproxy, "-db", "-f", str(cfg)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                verify: ssl.SSLContext | bool = (
                    ssl.create_default_context(cafile=str(self.certificate))
                    if self.certificate
                    else True
                )
                if httpx.get(self.url + "/readyz", timeout=1, verify=verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.balancer} did not come up")

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
