"""A real Web Push endpoint for tests: an asyncio HTTP server on loopback standing in for
a browser's push service. It holds a test subscription's keys (a P-256 key pair and an
auth secret made here with `cryptography`), checks each push's VAPID Authorization
(RFC 8292: an ES256 JWT whose `aud` is this endpoint's origin, signed by the key in
`k=`, which must be the server's public key) and decrypts its body (RFC 8291, aes128gcm)
with http_ece. Answers with the statuses a test gives (201 once they run out)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from typing import Any

import http_ece
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Push:
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any]
    vapid_key: str  # the k= of the Authorization header
    plaintext: bytes

    def json(self) -> Any:
        return orjson.loads(self.plaintext)


def check_vapid(authorization: str) -> tuple[dict[str, Any], str]:
    """The claims and public key of a `vapid t=<jwt>, k=<key>` header, its ES256
    signature checked against that key. Raises ValueError when anything is wrong."""
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"not a vapid Authorization: {scheme}")
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    token, key = parts["t"], parts["k"]
    head_b64, claims_b64, sig_b64 = token.split(".")
    head = orjson.loads(unb64(head_b64))
    if head.get("alg") != "ES256":
        raise ValueError(f"not ES256: {head}")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
    sig = unb64(sig_b64)
    if len(sig) != 64:
        raise ValueError("an ES256 signature is 64 bytes")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("the VAPID signature does not verify") from None
    return orjson.loads(unb64(claims_b64)), key


@dataclass
class PushEndpoint:
    """`async with PushEndpoint() as p:` then `p.subscription()` is what a browser would
    POST to /push/subscriptions; `p.pushes` what arrived and decrypted."""

    host: str = "127.0.0.1"
    statuses: list[int] = field(default_factory=list)
    pushes: list[Push] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # requests that did not check out
    port: int = 0
    path: str = "/push/abc123"
    _server: asyncio.Server | None = None

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = __import__("os").urandom(16)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.origin + self.path

    def subscription(self) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.url, "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

    async def __aenter__(self) -> PushEndpoint:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check(self, headers: dict[str, str], body: bytes) -> Push:
        claims, key = check_vapid(headers["authorization"])
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.origin!r}")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:", "http:")):
            raise ValueError(f"sub: {claims.get('sub')!r}")
        if not isinstance(claims.get("exp"), int):
            raise ValueError("no exp")
        if headers.get("content-encoding") != "aes128gcm":
            raise ValueError(f"content-encoding {headers.get('content-encoding')!r}")
        if "ttl" not in headers:
            raise ValueError("no TTL")
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return Push(headers, body, claims, key, plain)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, _path, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.statuses.pop(0) if self.statuses else 201
            try:
                self.pushes.append(self._check(headers, body))
            except Exception as exc:  # noqa: BLE001 - the test looks at failures
                self.failures.append(f"{type(exc).__name__}: {exc}")
                status = 400
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
