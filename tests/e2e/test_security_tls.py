"""TLS: the server speaks HTTPS and WSS itself with --tls-cert/--tls-key, TLS 1.2 or newer
only; without a certificate it refuses every address but loopback, and says why."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import orjson
import pytest
import trustme
import websockets

from tests.conftest import ADMIN_PASSWORD, free_port

pytestmark = pytest.mark.e2e


def _serve(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIDINGS_ADMIN_PASSWORD": ADMIN_PASSWORD}
    return subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--data-dir", str(data_dir), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _serve_tls(
    tmp_path: Path, cert_path: Path, key_path: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """`tidings serve` ending TLS itself on a free port, with the test's certificate."""
    port = free_port()
    tls = ("--tls-cert", str(cert_path), "--tls-key", str(key_path))
    return _serve(tmp_path / "data", "--port", str(port), *tls), port


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return out.decode(errors="replace")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return ca, cert_path, key_path


async def test_https_and_wss(tmp_path: Path, certificate: tuple[trustme.CA, Path, Path]) -> None:
    ca, cert_path, key_path = certificate
    proc, port = _serve_tls(tmp_path, cert_path, key_path)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, _stop(proc)
            try:
                async with httpx.AsyncClient(verify=client_ctx) as c:
                    if (await c.get(base + "/healthz")).status_code == 200:
                        break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

        async with httpx.AsyncClient(verify=client_ctx) as c:
            r = await c.post(
                base + "/api/v1/auth/login",
                json={"username": "admin", "password": ADMIN_PASSWORD},
            )
            assert r.status_code == 200, r.text
            token = r.json()["token"]
            # TLS ended here: every answer asks browsers to keep to HTTPS
            assert r.headers["strict-transport-security"] == "max-age=31536000"
            assert (await c.get(base + "/")).headers["strict-transport-security"]
            # plain HTTP on the TLS port is not answered as HTTP
            with pytest.raises(httpx.HTTPError):
                await c.get(f"http://127.0.0.1:{port}/healthz", timeout=3)

        async with websockets.connect(f"wss://127.0.0.1:{port}/api/v1/ws", ssl=client_ctx) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            ready = orjson.loads(await ws.recv())
            assert ready["type"] == "ready" and ready["user"]["username"] == "admin"

        # TLS 1.2 and 1.3 are spoken, older versions are refused
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context()
            ca.configure_trust(ctx)
            ctx.minimum_version = ctx.maximum_version = version
            async with httpx.AsyncClient(verify=ctx) as c:
                assert (await c.get(base + "/healthz")).status_code == 200
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(old)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with contextlib.suppress(ssl.SSLError):
            old.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, OSError, httpx.HTTPError)):
            async with httpx.AsyncClient(verify=old) as c:
                await c.get(base + "/healthz", timeout=5)
    finally:
        log = _stop(proc)
    assert ADMIN_PASSWORD not in log and token not in log


def test_plain_http_beyond_loopback_is_refused(tmp_path: Path) -> None:
    proc = _serve(tmp_path / "data", "--host", "0.0.0.0", "--port", str(free_port()))
    proc.wait(timeout=30)
    out = proc.communicate()[0].decode()
    assert proc.returncode == 2
    assert "refusing to serve plain HTTP on 0.0.0.0" in out
    assert "--tls-cert" in out and "--insecure-http" in out
    # nothing was created: it stopped before touching the data directory
    assert not (tmp_path / "data").exists()


def test_half_a_certificate_is_refused(
    tmp_path: Path, certificate: tuple[trustme.CA, Path, Path]
) -> None:
    _ca, cert_path, _key = certificate
    proc = _serve(tmp_path / "data", "--port", str(free_port()), "--tls-cert", str(cert_path))
    proc.wait(timeout=30)
    out = proc.communicate()[0].decode()
    assert proc.returncode == 2 and "--tls-key" in out


def test_bind_rules() -> None:
    from tidings.app.security import InsecureBind, check_bind, is_loopback
    from tidings.app.settings import Settings

    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert is_loopback(host)
        check_bind(Settings(host=host))
    for host in ("0.0.0.0", "::", "10.1.2.3", "chat.example.com"):
        assert not is_loopback(host)
        with pytest.raises(InsecureBind):
            check_bind(Settings(host=host))
        check_bind(Settings(host=host, insecure_http=True))
        check_bind(Settings(host=host, tls_cert=Path("c.pem"), tls_key=Path("k.pem")))


def test_server_context_refuses_old_protocols(certificate: tuple[trustme.CA, Path, Path]) -> None:
    """The server's own context (whatever the client's OpenSSL still allows)."""
    from tidings.app.security import TlsConfig, tls_options
    from tidings.app.settings import Settings

    _ca, cert_path, key_path = certificate
    settings = Settings(tls_cert=cert_path, tls_key=key_path)

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    config = TlsConfig(app, **tls_options(settings))
    config.load()
    assert config.ssl is not None
    assert config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(FileNotFoundError):
        tls_options(Settings(tls_cert=cert_path, tls_key=cert_path.parent / "missing.pem"))


def _handshake(port: int, ca: trustme.CA, version: ssl.TLSVersion, ciphers: str | None) -> str:
    """One TLS handshake with the server, the client offering only `version` (and, under
    TLS 1.2, only `ciphers`); the suite agreed, or ssl.SSLError."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.minimum_version = ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        suite = tls.cipher()
        assert suite is not None
        return suite[0]


def test_tls12_offers_only_aead_suites(
    tmp_path: Path, certificate: tuple[trustme.CA, Path, Path]
) -> None:
    """A TLS 1.2 client that offers only CBC suites (with or without ECDHE) is refused;
    ECDHE with AES-GCM or ChaCha20-Poly1305 is agreed; TLS 1.3 still works. (trustme's
    certificate has an ECDSA key.)"""
    ca, cert_path, key_path = certificate
    proc, port = _serve_tls(tmp_path, cert_path, key_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, _stop(proc)
            try:
                _handshake(port, ca, ssl.TLSVersion.TLSv1_3, None)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        v12 = ssl.TLSVersion.TLSv1_2
        for cbc in (
            "ECDHE-ECDSA-AES128-SHA256",
            "ECDHE-ECDSA-AES256-SHA384",
            "ECDHE-ECDSA-AES128-SHA",
            "ECDHE-ECDSA-AES256-SHA",
        ):
            with pytest.raises(ssl.SSLError):
                _handshake(port, ca, v12, cbc)
        for aead in (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        ):
            assert _handshake(port, ca, v12, aead) == aead
        assert _handshake(port, ca, ssl.TLSVersion.TLSv1_3, None).startswith("TLS_")
    finally:
        _stop(proc)
