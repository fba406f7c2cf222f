"""A real Web Push endpoint for tests: an asyncio HTTP server on loopback standing in for
a browser's push service. It holds a test subscription's keys (a P-256 key pair and an
auth secret made here with `cryptography`), checks each push's VAPID Authorization
(RFC 8292: an ES256 JWT whose `aud` is this endpoint's origin, signed by the key in
`k=`, which must be the server's public key) and decrypts its body (RFC 8291, aes128gcm)
with http_ece. Answers with the statuses a test gives (201 once they run out); the HTTP
server is tests/webhook_receiver.py's LoopbackHTTP."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, ClassVar

import http_ece
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.webhook_receiver import LoopbackHTTP, Received


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
class PushEndpoint(LoopbackHTTP):
    """`async with PushEndpoint() as p:` then `p.subscription()` is what a browser would
    POST to /push/subscriptions; `p.pushes` what arrived and decrypted."""

    default_status: ClassVar[int] = 201

    pushes: list[Push] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # requests that did not check out
    path: str = "/push/abc123"

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = __import__("os").urandom(16)

    @property
    def url(self) -> str:
        return self.origin + self.path

    def subscription(self) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.url, "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

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

    async def answer(self, request: Received) -> tuple[int, bytes, dict[str, str]]:
        status = self.next_status()
        try:
            self.pushes.append(self._check(request.headers, request.body))
        except Exception as exc:  # noqa: BLE001 - the test looks at failures
            self.failures.append(f"{type(exc).__name__}: {exc}")
            status = 400
        return status, b"", {}
