"""The OpenID Connect relying party's IO (identity/oidc.py) against a provider the test
controls on loopback (tests/oidc_helpers.py:FakeProvider): the ID token checks a user's
account depends on (signature, issuer, audience, expiry, nonce), the keys fetched again
when the provider rotates them, and requests that go nowhere but the provider."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.oidc_helpers import CLIENT_ID, CLIENT_SECRET, FakeProvider, new_key, tamper
from tidings.identity.oidc import OidcClient, OidcFailure, OidcOptions

NONCE = "the-nonce-of-this-sign-in"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider().start()
    try:
        yield p
    finally:
        p.stop()


def options(issuer: str, **changes: Any) -> OidcOptions:
    values: dict[str, Any] = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_auth": "client_secret_basic",
        "scopes": ("openid", "profile"),
        "allowed_hosts": frozenset(),
        "clock_skew_seconds": 30,
        "http_timeout_seconds": 5.0,
        "cache_seconds": 3600,
        "max_response_bytes": 64 * 1024,
        **changes,
    }
    return OidcOptions(**values)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Monotonic:
    return Monotonic()


@pytest.fixture
async def client(provider: FakeProvider, clock: Monotonic) -> AsyncIterator[OidcClient]:
    c = OidcClient(options(provider.issuer), monotonic=clock)
    try:
        yield c
    finally:
        await c.close()


def now() -> datetime:
    return datetime.now(UTC)


async def refused(client: OidcClient, token: str, reason: str = "invalid_token") -> str:
    with pytest.raises(OidcFailure) as caught:
        await client.verify(token, nonce=NONCE, now=now())
    assert caught.value.reason == reason
    return str(caught.value)


async def test_a_good_id_token_verifies(provider: FakeProvider, client: OidcClient) -> None:
    claims = await client.verify(provider.sign(provider.claims(NONCE)), nonce=NONCE, now=now())
    assert claims["sub"] == "subject-alice"
    assert claims["preferred_username"] == "alice"


async def test_a_token_from_another_issuer_is_refused(
    provider: FakeProvider, client: OidcClient
) -> None:
    token = provider.sign(provider.claims(NONCE, iss="https://evil.example"))
    assert "iss" in await refused(client, token)


async def test_a_discovery_document_naming_another_issuer_is_refused(
    provider: FakeProvider, client: OidcClient
) -> None:
    """OpenID Connect Discovery 4.3: the document's issuer is exactly the configured one."""
    provider.discovery_changes["issuer"] = provider.issuer + "/other"
    with pytest.raises(OidcFailure) as caught:
        await client.discovery()
    assert caught.value.reason == "configuration"


async def test_an_expired_token_is_refused_beyond_the_clock_skew(
    provider: FakeProvider, client: OidcClient
) -> None:
    t = int(time.time())
    late = provider.sign(provider.claims(NONCE, iat=t - 600, exp=t - 20))  # within 30 s
    assert (await client.verify(late, nonce=NONCE, now=now()))["sub"]
    expired = provider.sign(provider.claims(NONCE, iat=t - 600, exp=t - 120))
    assert "exp" in (await refused(client, expired)).lower()


async def test_a_token_issued_in_the_future_is_refused(
    provider: FakeProvider, client: OidcClient
) -> None:
    t = int(time.time())
    await refused(client, provider.sign(provider.claims(NONCE, iat=t + 600, exp=t + 900)))


async def test_a_tampered_signature_is_refused(provider: FakeProvider, client: OidcClient) -> None:
    token = provider.sign(provider.claims(NONCE))
    await refused(client, tamper(token))


async def test_claims_changed_under_the_signature_are_refused(
    provider: FakeProvider, client: OidcClient
) -> None:
    good = provider.sign(provider.claims(NONCE))
    forged = provider.sign(provider.claims(NONCE, sub="subject-mallory"))
    head, _body, sig = good.split(".")
    await refused(client, f"{head}.{forged.split('.')[1]}.{sig}")


async def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(
    provider: FakeProvider, client: OidcClient
) -> None:
    await refused(client, provider.sign(provider.claims(NONCE), key=new_key("k1")))


async def test_unsigned_and_mac_tokens_are_refused(
    provider: FakeProvider, client: OidcClient
) -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey

    claims = provider.claims(NONCE)
    mac = jwt.encode({"alg": "HS256", "kid": "k1"}, claims, OctKey.import_key(CLIENT_SECRET * 2))
    await refused(client, mac)
    head = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    await refused(client, f"{head}.{mac.split('.')[1]}.")


async def test_another_audience_or_nonce_is_refused(
    provider: FakeProvider, client: OidcClient
) -> None:
    await refused(client, provider.sign(provider.claims(NONCE, aud="another-client")))
    await refused(client, provider.sign(provider.claims("another-nonce")))
    await refused(client, provider.sign(provider.claims(None)))
    several = provider.claims(NONCE, aud=[CLIENT_ID, "another-client"])
    await refused(client, provider.sign(several))  # several audiences and no azp
    several["azp"] = CLIENT_ID
    assert (await client.verify(provider.sign(several), nonce=NONCE, now=now()))["sub"]


async def test_garbage_tokens_are_refused(client: OidcClient) -> None:
    for garbage in ("", "a.b", "a.b.c", "x" * 20_000, "ey.ey.ey", "\u202e.\u0000.x"):
        await refused(client, garbage)


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    provider: FakeProvider, client: OidcClient, clock: Monotonic
) -> None:
    """An unknown kid fetches the JWKS again (not more than every few seconds)."""
    await client.verify(provider.sign(provider.claims(NONCE)), nonce=NONCE, now=now())
    rotated = new_key("k2")
    provider.keys = [rotated]
    token = provider.sign(provider.claims(NONCE), key=rotated)
    clock.now += 1  # asked again too soon after the first fetch: still unknown
    await refused(client, token)
    clock.now += 30
    assert (await client.verify(token, nonce=NONCE, now=now()))["sub"] == "subject-alice"
    fetched = [p for m, p, _f, _h in provider.requests if p == "/jwks"]
    assert len(fetched) == 2


async def test_the_discovery_is_cached(provider: FakeProvider, client: OidcClient) -> None:
    for _ in range(3):
        await client.discovery()
    assert [p for _m, p, _f, _h in provider.requests].count(
        "/.well-known/openid-configuration"
    ) == 1


async def test_endpoints_on_another_host_are_not_fetched(provider: FakeProvider) -> None:
    """The discovery document cannot aim the server elsewhere (SSRF): its endpoints
    are on the issuer's host, or a host the admin allowed."""
    provider.discovery_changes["jwks_uri"] = "http://169.254.169.254/latest/meta-data"
    c = OidcClient(options(provider.issuer))
    try:
        with pytest.raises(OidcFailure) as caught:
            await c.discovery()
        assert caught.value.reason == "configuration"
    finally:
        await c.close()
    provider.discovery_changes["jwks_uri"] = "https://keys.example.com/jwks"
    allowed = OidcClient(options(provider.issuer, allowed_hosts=frozenset({"keys.example.com"})))
    try:
        assert (await allowed.discovery()).jwks_uri == "https://keys.example.com/jwks"
    finally:
        await allowed.close()


async def test_an_oversized_answer_is_not_read(provider: FakeProvider) -> None:
    provider.discovery_changes["padding"] = "x" * 100_000
    c = OidcClient(options(provider.issuer, max_response_bytes=8192))
    try:
        with pytest.raises(OidcFailure) as caught:
            await c.discovery()
        assert caught.value.reason == "unavailable"
        assert "8192" in str(caught.value)
    finally:
        await c.close()


async def test_an_unreachable_provider_is_unavailable() -> None:
    c = OidcClient(options("http://127.0.0.1:9", http_timeout_seconds=2.0))
    try:
        with pytest.raises(OidcFailure) as caught:
            await c.discovery()
        assert caught.value.reason == "unavailable"
    finally:
        await c.close()


async def test_the_code_is_redeemed_with_the_secret_and_the_verifier(
    provider: FakeProvider, client: OidcClient
) -> None:
    provider.answer_with(provider.sign(provider.claims(NONCE)))
    tokens = await client.redeem("the-code", "the-verifier", "http://127.0.0.1/cb")
    assert tokens.access_token == "at-the-code"
    ((form, headers),) = provider.token_requests()
    assert form == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": "the-verifier",
    }
    assert headers["authorization"].startswith("Basic ")
    provider.token_answer = lambda form: (400, {"error": "invalid_grant"})
    with pytest.raises(OidcFailure) as caught:
        await client.redeem("the-code", "the-verifier", "http://127.0.0.1/cb")
    assert (caught.value.reason, caught.value.provider_error) == ("provider", "invalid_grant")
