"""The OpenID Connect relying party's IO: the provider's discovery document and JWKS
(fetched, cached, the keys fetched again when a token names a key id not seen yet), the
token endpoint (authorization code + PKCE verifier), the userinfo endpoint, and the ID
token's verification (signature, issuer, audience, expiry, nonce). The JOSE work is
joserfc's; nothing here parses or checks a signature by hand.

Every request goes to the configured issuer's host (or a host the admin listed in
`oidc_allowed_hosts`, for providers such as Google whose keys live elsewhere): the
discovery document cannot send the server anywhere else. No redirect is followed and
every answer is bounded in size (`oidc_max_response_bytes`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import ip_address
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import ClaimError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

# Signatures with a public key only: never `none`, never a MAC keyed with the secret.
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
MAX_ID_TOKEN_CHARS = 16 * 1024
KEYS_REFRESH_EVERY = 10.0  # seconds: an unknown key id fetches the JWKS again at most this often
TokenAuth = Literal["client_secret_basic", "client_secret_post", "none"]
Reason = Literal["unavailable", "provider", "invalid_token", "configuration"]


class OidcFailure(Exception):
    """The provider could not be asked (`unavailable`), said no (`provider`, with its
    OAuth error code), answered with a token that does not verify (`invalid_token`), or
    its discovery document is not one this server may use (`configuration`)."""

    def __init__(self, reason: Reason, message: str, provider_error: str = "") -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.provider_error = provider_error


@dataclass(frozen=True, slots=True)
class OidcOptions:
    issuer: str
    client_id: str
    client_secret: str | None
    token_auth: TokenAuth
    scopes: tuple[str, ...]
    allowed_hosts: frozenset[str]
    clock_skew_seconds: int
    http_timeout_seconds: float
    cache_seconds: int
    max_response_bytes: int


@dataclass(frozen=True, slots=True)
class Discovery:
    """What the relying party uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    algorithms: tuple[str, ...]
    code_challenge_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Tokens:
    """The token endpoint's answer: the ID token (compact JWS) and, when given, an
    access token for the userinfo endpoint. Neither is ever logged or stored."""

    id_token: str
    access_token: str | None


@dataclass(slots=True)
class _Cached:
    value: Any = None
    fetched_at: float = field(default=-1e18)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer(issuer: str) -> str:
    """The issuer as configured: an https URL (http only on a loopback address, for
    tests and a provider on the same machine), no query or fragment."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the OIDC issuer is an https:// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("an http:// OIDC issuer is allowed on a loopback address only")
    if parts.query or parts.fragment:
        raise ValueError("the OIDC issuer has no query or fragment")
    return issuer


def _text(doc: Mapping[str, object], key: str, *, required: bool = True) -> str | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise OidcFailure("configuration", f"the discovery document has no usable {key}")
    return value


def _names(doc: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = doc.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


class OidcClient:
    """One provider. `transport` (tests) replaces the network; `monotonic` the clock
    the caches age by."""

    def __init__(
        self,
        options: OidcOptions,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self._issuer = urlsplit(options.issuer)
        self._http = httpx.AsyncClient(
            timeout=options.http_timeout_seconds,
            follow_redirects=False,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "Tidings OIDC"},
            trust_env=False,  # no proxy from the environment: requests go where checked
        )
        self._monotonic = monotonic
        self._discovery = _Cached()
        self._keys = _Cached()
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    # --- the provider's documents ---------------------------------------------------
    def check_url(self, url: str) -> str:
        """An endpoint the discovery document names: on the issuer's host (or an allowed
        one), https unless the issuer itself is plain http on loopback."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "https" and not (parts.scheme == "http" == self._issuer.scheme):
            raise OidcFailure("configuration", f"endpoint {url[:200]} is not https")
        allowed = host == self._issuer.hostname or host in self.options.allowed_hosts
        if not allowed or parts.username or parts.password:
            raise OidcFailure(
                "configuration",
                f"endpoint {url[:200]} is not on the issuer's host nor in oidc_allowed_hosts",
            )
        if parts.scheme == "http" and not is_loopback(host):
            raise OidcFailure("configuration", f"endpoint {url[:200]} is not https")
        return url

    async def _json(self, method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """One request to a checked URL: the status and the JSON object answered."""
        self.check_url(url)
        limit = self.options.max_response_bytes
        try:
            async with self._http.stream(method, url, **kwargs) as res:
                body = bytearray()
                async for chunk in res.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise OidcFailure(
                            "unavailable", f"{url[:200]} answered more than {limit} bytes"
                        )
                status = res.status_code
        except httpx.HTTPError as exc:
            raise OidcFailure(
                "unavailable", f"{url[:200]}: {type(exc).__name__}: {exc}"[:300]
            ) from exc
        if 300 <= status < 400:
            raise OidcFailure("unavailable", f"{url[:200]} answered a redirect ({status})")
        try:
            data = orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise OidcFailure("unavailable", f"{url[:200]} answered {status}, not a JSON object")
        return status, data

    async def discovery(self, *, refresh: bool = False) -> Discovery:
        """The discovery document (cached `oidc_cache_seconds`). Its `issuer` must be the
        configured one exactly (OpenID Connect Discovery 1.0, section 4.3)."""
        async with self._lock:
            cached = self._discovery
            fresh = self._monotonic() - cached.fetched_at < self.options.cache_seconds
            if cached.value is not None and fresh and not refresh:
                found: Discovery = cached.value
                return found
            url = self.options.issuer.rstrip("/") + "/.well-known/openid-configuration"
            status, doc = await self._json("GET", url)
            if status != 200:
                raise OidcFailure("unavailable", f"the discovery document answered {status}")
            issuer = _text(doc, "issuer")
            if issuer != self.options.issuer:
                raise OidcFailure(
                    "configuration",
                    f"the discovery document names issuer {str(issuer)[:200]!r}, "
                    f"not the configured {self.options.issuer!r}",
                )
            algorithms = _names(doc, "id_token_signing_alg_values_supported")
            found = Discovery(
                issuer=issuer,
                authorization_endpoint=self.check_url(str(_text(doc, "authorization_endpoint"))),
                token_endpoint=self.check_url(str(_text(doc, "token_endpoint"))),
                jwks_uri=self.check_url(str(_text(doc, "jwks_uri"))),
                userinfo_endpoint=_optional_url(self, doc, "userinfo_endpoint"),
                end_session_endpoint=_optional_url(self, doc, "end_session_endpoint"),
                algorithms=tuple(a for a in algorithms if a in ASYMMETRIC_ALGORITHMS) or ("RS256",),
                code_challenge_methods=_names(doc, "code_challenge_methods_supported"),
            )
            self._discovery = _Cached(found, self._monotonic())
            return found

    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys (cached like the discovery document)."""
        found = await self.discovery()
        async with self._lock:
            cached = self._keys
            age = self._monotonic() - cached.fetched_at
            if cached.value is not None and age < self.options.cache_seconds and not refresh:
                keys: KeySet = cached.value
                return keys
            if cached.value is not None and refresh and age < KEYS_REFRESH_EVERY:
                keys = cached.value  # asked again too soon: an unknown key id stays unknown
                return keys
            status, doc = await self._json("GET", found.jwks_uri)
            if status != 200:
                raise OidcFailure("unavailable", f"the JWKS answered {status}")
            public = [k for k in doc.get("keys") or [] if isinstance(k, dict) and "d" not in k]
            try:
                keys = KeySet.import_key_set({"keys": public})
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise OidcFailure("configuration", f"the JWKS has no usable key: {exc}") from exc
            self._keys = _Cached(keys, self._monotonic())
            return keys

    # --- the authorization code flow ---------------------------------------------------
    def authorization_url(
        self, found: Discovery, *, redirect_uri: str, state: str, nonce: str, challenge: str
    ) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.options.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.options.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        sep = "&" if "?" in found.authorization_endpoint else "?"
        return f"{found.authorization_endpoint}{sep}{query}"

    def end_session_url(self, found: Discovery, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), when offered."""
        if found.end_session_endpoint is None:
            return None
        query = urlencode(
            {
                "client_id": self.options.client_id,
                "post_logout_redirect_uri": post_logout_redirect_uri,
            }
        )
        sep = "&" if "?" in found.end_session_endpoint else "?"
        return f"{found.end_session_endpoint}{sep}{query}"

    async def redeem(self, code: str, verifier: str, redirect_uri: str) -> Tokens:
        """The authorization code and the PKCE verifier for the tokens."""
        found = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        auth: httpx.BasicAuth | None = None
        secret = self.options.client_secret or ""
        if self.options.token_auth == "client_secret_basic":
            auth = httpx.BasicAuth(self.options.client_id, secret)
        else:
            form["client_id"] = self.options.client_id
            if self.options.token_auth == "client_secret_post":
                form["client_secret"] = secret
        status, doc = await self._json("POST", found.token_endpoint, data=form, auth=auth)
        if status != 200 or "error" in doc:
            error = str(doc.get("error") or f"http_{status}")[:64]
            raise OidcFailure("provider", f"the token endpoint refused the code: {error}", error)
        id_token = doc.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise OidcFailure("invalid_token", "the token endpoint answered no id_token")
        access = doc.get("access_token")
        return Tokens(id_token, access if isinstance(access, str) and access else None)

    async def verify(self, id_token: str, *, nonce: str, now: datetime) -> dict[str, Any]:
        """The ID token's claims, once its signature (a key of the provider's JWKS, an
        algorithm it announces), issuer, audience (and authorized party), expiry, issue
        time and nonce are checked, with `oidc_clock_skew_seconds` of leeway."""
        if len(id_token) > MAX_ID_TOKEN_CHARS:
            raise OidcFailure("invalid_token", "the ID token is too long")
        found = await self.discovery()
        algorithms = list(found.algorithms)
        keys = await self.keys()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=algorithms)
            except InvalidKeyIdError:  # the provider may have rotated its keys
                keys = await self.keys(refresh=True)
                token = jwt.decode(id_token, keys, algorithms=algorithms)
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcFailure("invalid_token", f"the ID token does not verify: {exc}") from exc
        claims: dict[str, Any] = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=self.options.clock_skew_seconds,
            iss={"essential": True, "value": self.options.issuer},
            aud={"essential": True, "value": self.options.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except (ClaimError, JoseError, ValueError, TypeError) as exc:
            raise OidcFailure("invalid_token", f"the ID token's claims: {exc}") from exc
        audience = claims.get("aud")
        several = isinstance(audience, list) and len(audience) > 1
        if several and claims.get("azp") != self.options.client_id:
            raise OidcFailure("invalid_token", "the ID token is for several audiences, azp")
        if not isinstance(claims.get("sub"), str) or not 0 < len(claims["sub"]) <= 255:
            raise OidcFailure("invalid_token", "the ID token's sub is not a short string")
        return claims

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The userinfo endpoint's claims (empty when the provider has none); its `sub`
        must be the ID token's (OpenID Connect Core 1.0, section 5.3.2)."""
        found = await self.discovery()
        if found.userinfo_endpoint is None:
            return {}
        status, doc = await self._json(
            "GET", found.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if status != 200:
            raise OidcFailure("unavailable", f"the userinfo endpoint answered {status}")
        if doc.get("sub") != subject:
            raise OidcFailure("invalid_token", "the userinfo endpoint's sub is another user's")
        return doc


def _optional_url(client: OidcClient, doc: Mapping[str, object], key: str) -> str | None:
    value = _text(doc, key, required=False)
    return None if value is None else client.check_url(value)
