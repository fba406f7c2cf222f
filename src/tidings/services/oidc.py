"""Single sign-on with OpenID Connect: the authorization code flow with PKCE (S256), for
the web client.

1. `start`: a `state`, a `nonce` and a PKCE verifier, kept server-side (store:
   `oidc_logins`, kind "pending") under the hash of the state, bound to the browser (the
   hash of a random cookie the route sets) and expiring after `oidc_login_timeout_seconds`;
   the browser goes to the provider's authorization endpoint.
2. `callback`: the provider sends the browser back with `code` and `state` (or an
   `error`). The pending sign-in is taken (deleted: a replayed state finds nothing), must
   belong to this browser and be unexpired; the code is redeemed with the verifier, the
   ID token verified (identity/oidc.py: signature, issuer, audience, expiry, nonce), its
   claims mapped to the account (services/identity.py provisions it like LDAP's) and a
   one-time hand-off code kept (kind "handoff") for the same browser.
3. `exchange`: the web client, back on its page, trades the hand-off (a cookie, never a
   URL) for a Tidings session token, exactly what POST /auth/login answers.

The second factor: an OpenID Connect sign-in is the identity provider's to protect (its
own MFA policy); Tidings asks no TOTP code on top. `oidc_required_amr` (e.g. `mfa`)
refuses ID tokens that do not say the provider used that method. Every sign-in and every
refusal is audited (`login` / `login_failed` with method `oidc`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from tidings.core.audit import AuditAction
from tidings.core.clock import new_token
from tidings.core.errors import (
    Conflict,
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    RateLimited,
    TidingsError,
    Unavailable,
)
from tidings.core.models import ExternalProfile, OrgRole, Session, User
from tidings.core.rules import check_admin, clean_text
from tidings.identity.oidc import OidcClient, OidcFailure
from tidings.services.audit import record
from tidings.services.auth import AuthService
from tidings.services.context import Deps
from tidings.services.identity import IdentityService, clean_email
from tidings.services.ratelimit import Action
from tidings.store.ports import PendingLogin

log = structlog.get_logger(__name__)

PROVIDER = "oidc"  # identity_links.provider of accounts signed in this way
PENDING, HANDOFF = "pending", "handoff"
MAX_STATE_CHARS = 256
MAX_CODE_CHARS = 4096
MAX_ERROR_CHARS = 128
TOKENISH = re.compile(r"^[A-Za-z0-9._~+/=-]+$")  # what states and codes are made of
ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


@dataclass(frozen=True, slots=True)
class OidcLimits:
    """The OpenID Connect settings the service needs (settings of the same names)."""

    oidc_provider_name: str
    oidc_redirect_url: str
    oidc_post_logout_redirect_url: str
    oidc_username_claim: str
    oidc_display_name_claim: str
    oidc_email_claim: str
    oidc_groups_claim: str
    oidc_department_claim: str
    oidc_group_roles: str
    oidc_required_amr: str
    oidc_login_timeout_seconds: int
    oidc_max_pending_logins: int


class OidcRefused(TidingsError):
    """A sign-in that did not succeed; `reason` is what the web client is told (one of
    REASONS), the audit log keeps the detail."""

    code = InvalidCredentials.code

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# What the web client may be told after the callback (its i18n keys: login.oidc_<reason>).
REASONS = (
    "cancelled",  # the user said no at the provider
    "provider",  # the provider answered an error
    "state",  # unknown, replayed, expired, or another browser's sign-in
    "invalid_token",  # the ID token did not verify
    "unavailable",  # the provider could not be reached or is misconfigured
    "not_allowed",  # claims Tidings cannot use, amr missing, the account cannot sign in
    "disabled",  # the account is disabled
    "rate_limited",
)


@dataclass(frozen=True, slots=True)
class Started:
    url: str  # the provider's authorization endpoint, with the request
    browser_secret: str  # the cookie that binds this sign-in to the browser


@dataclass(frozen=True, slots=True)
class Profile:
    """What the claims say of the account (mapped by the `oidc_*_claim` settings)."""

    username: str
    display_name: str
    email: str | None
    department: str | None
    role: OrgRole | None  # from the groups (None: no mapped group)
    groups: tuple[str, ...]


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def s256(verifier: str) -> str:
    """The PKCE code challenge of a verifier (RFC 7636, section 4.2)."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def username_from(value: object) -> str | None:
    """A Tidings username from a claim: lower case, the part before an '@' (Entra's
    preferred_username is an address), other characters as '-', at most 32."""
    if not isinstance(value, str):
        return None
    name = value.strip().lower().split("@", 1)[0]
    name = re.sub(r"[^a-z0-9._-]", "-", name)[:32].strip("-._")
    return name or None


def parse_group_roles(text: str) -> list[tuple[str, OrgRole]]:
    """`oidc_group_roles`: "group=role, group=role" in order of precedence (the
    settings refuse anything else; a provider never makes an owner)."""
    pairs: list[tuple[str, OrgRole]] = []
    for item in text.split(","):
        if not item.strip():
            continue
        group, sep, role = item.rpartition("=")
        group, role = group.strip(), role.strip()
        allowed = [r.value for r in OrgRole if r is not OrgRole.OWNER]
        if not sep or not group or role not in allowed:
            raise ValueError(
                f"oidc_group_roles: {item.strip()!r} is not group=role with role one of "
                + ", ".join(allowed)
            )
        pairs.append((group, OrgRole(role)))
    return pairs


def profile_from(claims: dict[str, Any], limits: OidcLimits) -> Profile:
    """The account the claims describe; OidcRefused when they name no usable username."""
    username = username_from(claims.get(limits.oidc_username_claim))
    if username is None:
        raise OidcRefused(
            "not_allowed", f"the ID token has no usable {limits.oidc_username_claim} claim"
        )
    shown = claims.get(limits.oidc_display_name_claim)
    try:
        display_name = clean_text(
            shown if isinstance(shown, str) and shown.strip() else username,
            field="display_name",
            max_chars=80,
        )
    except TidingsError:
        display_name = username
    email = claims.get(limits.oidc_email_claim)
    email = email.strip()[:254] if isinstance(email, str) and "@" in email else None
    groups: tuple[str, ...] = ()
    raw_groups = claims.get(limits.oidc_groups_claim) if limits.oidc_groups_claim else None
    if isinstance(raw_groups, list):
        groups = tuple(str(g)[:256] for g in raw_groups[:1000] if isinstance(g, str))
    elif isinstance(raw_groups, str):
        groups = (raw_groups[:256],)
    # With a mapping and the groups claim in the token, the first mapped group gives the
    # role and none means member (leaving the admins' group takes admin away); without
    # the claim the account keeps its role.
    mapping = parse_group_roles(limits.oidc_group_roles)
    role = None
    if mapping and raw_groups is not None:
        role = next((mapped for group, mapped in mapping if group in groups), OrgRole.MEMBER)
    department = None
    if limits.oidc_department_claim:
        value = claims.get(limits.oidc_department_claim)
        if isinstance(value, str) and value.strip():
            department = value.strip()[:80]
    return Profile(username, display_name, email, department, role, groups)


class OidcService:
    """Sign-in with the configured OpenID provider (`client` None: OIDC is off; then
    `limits` may be None too)."""

    def __init__(
        self,
        deps: Deps,
        auth: AuthService,
        identity: IdentityService,
        client: OidcClient | None,
        limits: OidcLimits | None,
    ) -> None:
        if client is not None and limits is None:
            raise ValueError("an OIDC client needs its settings")
        self.d = deps
        self.auth = auth
        self.identity = identity
        self.client = client
        self._limits = limits

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def set_client(self, client: OidcClient | None, limits: OidcLimits | None) -> None:
        """Put another provider client in force (the admins changed the settings; None:
        OpenID Connect off), closing the one before."""
        if client is not None and limits is None:
            raise ValueError("an OIDC client needs its settings")
        old = self.client
        self.client, self._limits = client, limits
        if old is not None and old is not client:
            await old.close()

    @property
    def limits(self) -> OidcLimits:
        if self._limits is None:
            raise NotFound("OpenID Connect sign-in is not configured")
        return self._limits

    def info(self) -> dict[str, object]:
        """What the login form needs to know (no authentication)."""
        if self.client is None or self._limits is None:
            return {"enabled": False, "provider_name": ""}
        return {"enabled": True, "provider_name": self._limits.oidc_provider_name}

    def check_enabled(self) -> None:
        """NotFound when OpenID Connect is off."""
        self._client()

    def _client(self) -> OidcClient:
        if self.client is None:
            raise NotFound("OpenID Connect sign-in is not configured")
        return self.client

    def redirect_uri(self, request_base: str) -> str:
        """The callback URL: the setting, else this server as the browser reached it."""
        return self.limits.oidc_redirect_url or (
            request_base.rstrip("/") + "/api/v1/auth/oidc/callback"
        )

    def post_logout_uri(self, request_base: str) -> str:
        return self.limits.oidc_post_logout_redirect_url or request_base.rstrip("/") + "/"

    async def _limit(self, address: str) -> None:
        """Sign-ins of one address count towards `rate_login_per_address` like password
        logins; one refused here writes nothing (no audit entry: a flood must not
        become a flood of writes)."""
        await self.auth.limiter.check(Action.LOGIN, None, address or None)

    # --- 1. start -----------------------------------------------------------------------
    async def start(self, request_base: str, address: str) -> Started:
        client = self._client()
        await self._limit(address)
        try:
            found = await client.discovery()
        except OidcFailure as exc:
            await self._refused(address, "unavailable", {"error": str(exc)[:300]})
            raise Unavailable(f"the identity provider cannot be used: {exc}") from exc
        state, nonce, verifier = new_token(), new_token(), secrets.token_urlsafe(48)
        browser = new_token()
        redirect_uri = self.redirect_uri(request_base)
        now = self.d.clock.now()
        pending = PendingLogin(
            kind=PENDING,
            browser_hash=digest(browser),
            payload={"nonce": nonce, "verifier": verifier, "redirect_uri": redirect_uri},
            expires_at=now + timedelta(seconds=self.limits.oidc_login_timeout_seconds),
        )
        async with self.d.store.write() as tx:
            if await tx.count_pending_logins(now) >= self.limits.oidc_max_pending_logins:
                raise RateLimited(
                    "too many sign-ins in progress: retry later",
                    retry_after=float(self.limits.oidc_login_timeout_seconds),
                )
            await tx.put_pending_login(digest(state), pending, now)
        url = client.authorization_url(
            found, redirect_uri=redirect_uri, state=state, nonce=nonce, challenge=s256(verifier)
        )
        return Started(url, browser)

    # --- 2. callback --------------------------------------------------------------------
    async def callback(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        browser_secret: str | None,
        address: str,
    ) -> str:
        """The hand-off code of a finished sign-in; OidcRefused (or RateLimited) else."""
        client = self._client()
        await self._limit(address)
        if not _tokenish(state, MAX_STATE_CHARS):
            await self._refused(address, "state", {"why": "missing or malformed state"})
            raise OidcRefused("state", "the sign-in's state is missing or malformed")
        assert state is not None
        async with self.d.store.write() as tx:
            pending = await tx.take_pending_login(digest(state))
        now = self.d.clock.now()
        why = None
        if pending is None or pending.kind != PENDING:
            why = "unknown or already used state"
        elif not browser_secret or not hmac.compare_digest(
            pending.browser_hash, digest(browser_secret[:256])
        ):
            why = "the state belongs to another browser"
        elif pending.expires_at <= now:
            why = "the sign-in took too long"
        if why is not None:
            await self._refused(address, "state", {"why": why})
            raise OidcRefused("state", why)
        assert pending is not None
        if error is not None:
            provider_error = error[:MAX_ERROR_CHARS]
            if not ERROR_CODE.fullmatch(provider_error):
                provider_error = "malformed"
            reason = "cancelled" if provider_error == "access_denied" else "provider"
            await self._refused(address, reason, {"provider_error": provider_error})
            raise OidcRefused(reason, f"the identity provider answered {provider_error}")
        if not _tokenish(code, MAX_CODE_CHARS):
            await self._refused(address, "provider", {"why": "missing or malformed code"})
            raise OidcRefused("provider", "the provider sent no usable code")
        assert code is not None
        payload = pending.payload
        try:
            tokens = await client.redeem(code, payload["verifier"], payload["redirect_uri"])
            claims = await client.verify(tokens.id_token, nonce=payload["nonce"], now=now)
            if tokens.access_token is not None:
                extra = await client.userinfo(tokens.access_token, str(claims["sub"]))
                claims = {**extra, **claims}  # what the ID token says wins
        except OidcFailure as exc:
            reason = {
                "unavailable": "unavailable",
                "configuration": "unavailable",
                "provider": "provider",
                "invalid_token": "invalid_token",
            }[exc.reason]
            details: dict[str, object] = {"error": str(exc)[:300]}
            if exc.provider_error:
                details["provider_error"] = exc.provider_error
            await self._refused(address, reason, details)
            raise OidcRefused(reason, str(exc)) from exc
        subject = str(claims["sub"])
        required = self.limits.oidc_required_amr
        amr = claims.get("amr")
        if required and not (isinstance(amr, list) and required in amr):
            await self._refused(address, "not_allowed", {"subject": subject, "why": "amr"})
            raise OidcRefused("not_allowed", f"the provider did not say it used {required}")
        try:
            profile = profile_from(claims, self.limits)
        except OidcRefused as exc:
            await self._refused(address, exc.reason, {"subject": subject, "why": str(exc)})
            raise
        user = await self._account(subject, profile, address)
        handoff = new_token()
        async with self.d.store.write() as tx:
            await tx.put_pending_login(
                digest(handoff),
                PendingLogin(
                    kind=HANDOFF,
                    browser_hash=pending.browser_hash,
                    payload={"user_id": user.id, "subject": subject},
                    expires_at=now + timedelta(seconds=self.limits.oidc_login_timeout_seconds),
                ),
                now,
            )
        return handoff

    @property
    def provider(self) -> str:
        """The accounts' identity provider name ("oidc:" and a digest of the issuer): an
        ID token's `sub` is unique only at its issuer, so another issuer's are others."""
        client = self._client()
        return "oidc:" + digest(client.options.issuer)[:16]

    async def _account(self, subject: str, profile: Profile, address: str) -> User:
        """The account of this subject, created or brought up to date from the profile
        (services/identity.py, as LDAP's and SCIM's); refused when it may not sign in."""
        external = ExternalProfile(
            username=profile.username,
            display_name=profile.display_name,
            email=_email(profile.email),
            departments=None if profile.department is None else (profile.department,),
            role=profile.role,
        )
        try:  # an account an admin disabled stays so (the provider's word cannot undo it)
            linked = await self.identity.user_for(self.provider, subject)
        except NotFound:
            linked = None
        if linked is not None and linked.disabled:
            await self._refused(address, "disabled", {"subject": subject, "user_id": linked.id})
            raise OidcRefused("disabled", "this account is disabled")
        try:
            user = await self.identity.provision(self.provider, subject, external)
        except Conflict as exc:
            await self._refused(
                address, "not_allowed", {"subject": subject, "why": "conflict", "error": str(exc)}
            )
            raise OidcRefused("not_allowed", str(exc)) from exc
        except InvalidRequest as exc:
            await self._refused(
                address, "not_allowed", {"subject": subject, "why": "profile", "error": str(exc)}
            )
            raise OidcRefused("not_allowed", str(exc)) from exc
        if user.disabled or user.bot:
            await self._refused(address, "disabled", {"subject": subject, "user_id": user.id})
            raise OidcRefused("disabled", "this account is disabled")
        return user

    # --- 3. exchange --------------------------------------------------------------------
    async def exchange(
        self,
        handoff: str | None,
        browser_secret: str | None,
        *,
        device: str,
        address: str,
        request_base: str,
    ) -> tuple[str, Session, str | None]:
        """The session token of a finished sign-in (what POST /auth/login answers), and
        the provider's logout URL (RP-initiated logout) when it has one."""
        client = self._client()
        await self._limit(address)
        taken = None
        if _tokenish(handoff, MAX_STATE_CHARS):
            assert handoff is not None
            async with self.d.store.write() as tx:
                taken = await tx.take_pending_login(digest(handoff))
        now = self.d.clock.now()
        if (
            taken is None
            or taken.kind != HANDOFF
            or not browser_secret
            or not hmac.compare_digest(taken.browser_hash, digest(browser_secret[:256]))
            or taken.expires_at <= now
        ):
            await self._refused(address, "state", {"why": "unknown or used hand-off"})
            raise InvalidCredentials("no OpenID Connect sign-in to finish: sign in again")
        async with self.d.store.read() as tx:
            user = await tx.get_user(taken.payload["user_id"])
        if user is None or user.disabled:
            await self._refused(address, "disabled", {"subject": taken.payload["subject"]})
            raise InvalidCredentials("this account cannot sign in")
        token, session = await self.auth.open_session(
            user,
            device,
            address,
            {"method": "oidc", "subject": taken.payload["subject"], "second_factor": "idp"},
        )
        self.d.counts.login("oidc", "ok")
        logout_url = None
        try:
            found = await client.discovery()
            logout_url = client.end_session_url(found, self.post_logout_uri(request_base))
        except OidcFailure:
            pass  # the session is open; only the provider's logout link is missing
        return token, session, logout_url

    async def _refused(self, address: str, reason: str, details: dict[str, object]) -> None:
        log.info("oidc_login_refused", reason=reason)
        self.d.counts.login("oidc", reason)  # /metrics: a reason of REASONS, bounded
        async with self.d.store.write() as tx:
            await record(
                tx,
                self.d.clock,
                AuditAction.LOGIN_FAILED,
                actor_id=None,
                address=address,
                details={"method": "oidc", "refused": reason, **details},
            )

    # --- admin ----------------------------------------------------------------------------
    def configuration(self, actor: User) -> dict[str, object]:
        """What is configured (the client secret never: only whether one is set)."""
        check_admin(actor, "see the single sign-on settings")
        client = self.client
        if client is None or self._limits is None:
            return {"enabled": False}
        lim = self._limits
        return {
            "enabled": True,
            "issuer": client.options.issuer,
            "client_id": client.options.client_id,
            "client_secret_set": bool(client.options.client_secret),
            "token_auth_method": client.options.token_auth,
            "scopes": list(client.options.scopes),
            "redirect_url": lim.oidc_redirect_url or None,
            "provider_name": lim.oidc_provider_name,
            "claims": {
                "username": lim.oidc_username_claim,
                "display_name": lim.oidc_display_name_claim,
                "email": lim.oidc_email_claim,
                "groups": lim.oidc_groups_claim or None,
                "department": lim.oidc_department_claim or None,
            },
            "group_roles": [
                {"group": g, "role": r.value} for g, r in parse_group_roles(lim.oidc_group_roles)
            ],
            "required_amr": lim.oidc_required_amr or None,
        }

    async def test(self, actor: User | None) -> dict[str, object]:
        """Fetch the discovery document and the JWKS again and say what they hold
        (`actor` None: the operator at the command line)."""
        check_admin(actor, "test the single sign-on settings")
        client = self._client()
        report: dict[str, object] = {"ok": False, "issuer": client.options.issuer}
        try:
            found = await client.discovery(refresh=True)
            keys = await client.keys(refresh=True)
        except OidcFailure as exc:
            report["error"] = str(exc)[:500]
            return report
        report.update(
            ok="S256" in found.code_challenge_methods or not found.code_challenge_methods,
            authorization_endpoint=found.authorization_endpoint,
            token_endpoint=found.token_endpoint,
            userinfo_endpoint=found.userinfo_endpoint,
            end_session_endpoint=found.end_session_endpoint,
            algorithms=list(found.algorithms),
            keys=len(keys.keys),
            pkce_s256=("S256" in found.code_challenge_methods) or None,
        )
        if not report["ok"]:
            report["error"] = "the provider does not announce PKCE S256"
        return report


def _email(raw: str | None) -> str | None:
    """An address the provider gave, when it is one (else none: no refusal for it)."""
    try:
        return clean_email(raw)
    except InvalidRequest:
        return None


def _tokenish(value: str | None, limit: int) -> bool:
    return value is not None and 0 < len(value) <= limit and bool(TOKENISH.fullmatch(value))
