"""OpenID providers for the tests.

- `FakeProvider`: a small HTTP server on loopback that the test controls: its discovery
  document, its JWKS (RSA keys the test made) and a token endpoint answering an ID token
  the test signs (or tampers with). For the refusals: a wrong issuer, an expired token,
  a tampered signature, another audience, a rotated key.
- `NodeProvider`: the real, certified `oidc-provider` (npm, version pinned in
  tests/oidc/package.json and package-lock.json), installed once into a cache directory
  (`npm ci`) and started on loopback with tests/oidc/provider.mjs. For the end-to-end
  sign-in in Chromium.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

REQUIRE_SERVICES = os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1"
OIDC_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "tidings"
CLIENT_SECRET = "test-client-secret-not-a-real-one"


@pytest.fixture
def quiet_httpx() -> Iterator[None]:
    """The tests' own HTTP client logs each URL it asks for (httpx, INFO) into the
    in-process log, and a callback URL carries the sign-in's state and code, which the
    secret scan of the logs (tests/e2e/secret_scan.py) rightly flags: the tests do not
    log them. (The server logs no request URLs: uvicorn's access log is off.)"""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class FakeProvider:
    """See the module's doc. `claims(form)` makes the next ID token's claims from the
    token request's form (the test sets it); `sign` signs them."""

    keys: list[RSAKey] = field(default_factory=lambda: [new_key("k1")])
    discovery_changes: dict[str, Any] = field(default_factory=dict)
    token_answer: Callable[[dict[str, str]], tuple[int, dict[str, Any]]] | None = None
    userinfo: dict[str, Any] | None = None
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def start(self) -> FakeProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, form: dict[str, str]) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                provider.requests.append((self.command, self.path, form, headers))

            def do_GET(self) -> None:
                self._record({})
                path = urlsplit(self.path).path
                if path == "/.well-known/openid-configuration":
                    self._answer(200, provider.discovery())
                elif path == "/jwks":
                    self._answer(200, provider.jwks())
                elif path == "/userinfo" and provider.userinfo is not None:
                    self._answer(200, provider.userinfo)
                else:
                    self._answer(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                self._record(form)
                if urlsplit(self.path).path != "/token" or provider.token_answer is None:
                    self._answer(400, {"error": "invalid_request"})
                    return
                status, body = provider.token_answer(form)
                self._answer(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }
        if self.userinfo is not None:
            doc["userinfo_endpoint"] = f"{self.issuer}/userinfo"
        doc.update(self.discovery_changes)
        return {k: v for k, v in doc.items() if v is not None}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.keys]}

    def claims(self, nonce: str | None, **changes: Any) -> dict[str, Any]:
        """Good claims for `nonce` (a minute old, valid for five), with `changes`."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "subject-alice",
            "iat": now - 60,
            "exp": now + 300,
            "nonce": nonce,
            "preferred_username": "alice",
            "name": "Alice Liddell",
            "email": "alice@example.test",
            "groups": ["staff"],
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None, alg: str = "RS256") -> str:
        key = key or self.keys[0]
        header = {"alg": alg, "kid": key.kid}
        return jwt.encode(header, claims, key)

    def answer_with(self, id_token: str) -> None:
        """The token endpoint answers this ID token (and an access token) once asked."""
        self.token_answer = lambda form: (
            200,
            {"id_token": id_token, "access_token": "at-" + form.get("code", ""),
             "token_type": "Bearer", "expires_in": 300},
        )  # fmt: skip

    def token_requests(self) -> list[tuple[dict[str, str], dict[str, str]]]:
        return [(form, headers) for method, path, form, headers in self.requests
                if method == "POST" and path.startswith("/token")]  # fmt: skip


def tamper(token: str) -> str:
    """The same header and claims with one bit of the signature changed."""
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def s256(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- the real provider ------------------------------------------------------------------
def missing_node() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Node.js 20+ runs the test OpenID provider)"
    return None


def skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}, and TIDINGS_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


def install_provider() -> Path:
    """tests/oidc's pinned packages, installed once per lock file into a cache directory
    ($TIDINGS_TEST_CACHE, default ~/.cache/tidings-tests); returns that directory."""
    lock = (OIDC_DIR / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("TIDINGS_TEST_CACHE") or Path.home() / ".cache" / "tidings-tests")
    target = cache / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:16]}"
    done = target / ".installed"
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # xdist workers install it once between them
        if not done.exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(OIDC_DIR / name, target / name)
            npm_ci = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
            result = subprocess.run(
                [*npm_ci, "--prefix", str(target)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0:
                skip_or_fail(f"npm ci of oidc-provider failed: {result.stderr[-500:]}")
            done.write_text("ok\n")
    shutil.copyfile(OIDC_DIR / "provider.mjs", target / "provider.mjs")
    return target


class NodeProvider:
    """tests/oidc/provider.mjs on a loopback port (see the module's doc)."""

    def __init__(self, directory: Path, port: int, redirect_uri: str, post_logout_uri: str):
        self.directory = directory
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PORT": str(port),
            "REDIRECT_URI": redirect_uri,
            "POST_LOGOUT_URI": post_logout_uri,
            "CLIENT_SECRET": CLIENT_SECRET,
            "NODE_ENV": "test",
        }
        self.log_path = directory / f"provider-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> NodeProvider:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            ["node", str(self.directory / "provider.mjs")],
            cwd=self.directory,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited:\n{self.logs()}")
            if "ready " in self.logs():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"oidc-provider did not start in {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
