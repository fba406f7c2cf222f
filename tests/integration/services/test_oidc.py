"""Single sign-on with OpenID Connect, at the service (services/oidc.py), on a real
database (SQLite and, parametrized, PostgreSQL) against a provider the test controls on
loopback (tests/oidc_helpers.py:FakeProvider), whose ID tokens the test signs: the
authorization code flow with PKCE, a replayed or foreign state, a wrong issuer, an
expired token, a tampered signature, the provider's own refusals, the one-time hand-off
and the audit log of each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FakeClock
from tests.oidc_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProvider,
    query_of,
    quiet_httpx,  # noqa: F401 - a fixture
    s256,
    tamper,
)
from tidings.app.container import Container
from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidCredentials, RateLimited
from tidings.core.models import OrgRole, UserOrigin
from tidings.services.oidc import OidcRefused, Started

BASE = "http://tidings.test"
ADDRESS = "203.0.113.7"


pytestmark = pytest.mark.usefixtures("quiet_httpx")


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider().start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def container_clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))  # the provider's tokens are signed for real time


@pytest.fixture
def container_settings(provider: FakeProvider) -> dict[str, object]:
    return {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_group_roles": "tidings-admins=admin, contractors=guest",
        "oidc_department_claim": "department",
        "oidc_max_pending_logins": 20,
        "rate_login_per_address": 0,
    }


class Flow:
    def __init__(self, c: Container, provider: FakeProvider) -> None:
        self.c = c
        self.svc = c.services.oidc
        self.provider = provider

    async def start(self) -> tuple[Started, dict[str, str]]:
        started = await self.svc.start(BASE, ADDRESS)
        return started, query_of(started.url)

    async def back(
        self,
        started: Started,
        q: dict[str, str],
        *,
        token: str | None = None,
        browser: str | None = "same",
        **claims: Any,
    ) -> str:
        """The provider sends the browser back with a code; its token endpoint answers
        `token` (default: good claims for this sign-in's nonce, with `claims`)."""
        p = self.provider
        p.answer_with(token or p.sign(p.claims(q["nonce"], **claims)))
        return await self.svc.callback(
            state=q["state"],
            code="the-code",
            error=None,
            browser_secret=started.browser_secret if browser == "same" else browser,
            address=ADDRESS,
        )

    async def sign_in(self, **claims: Any) -> tuple[str, Any, str | None]:
        started, q = await self.start()
        handoff = await self.back(started, q, **claims)
        return await self.svc.exchange(
            handoff, started.browser_secret, device="test", address=ADDRESS, request_base=BASE
        )

    async def refused(self, reason: str, started: Started, q: dict[str, str], **kw: Any) -> None:
        with pytest.raises(OidcRefused) as caught:
            await self.back(started, q, **kw)
        assert caught.value.reason == reason

    async def audit(self, action: str) -> list[dict[str, Any]]:
        async with self.c.store.read() as tx:
            entries = await tx.list_audit(0, 500)
        return [{"target_id": e.target_id, **e.details} for e in entries if e.action == action]


@pytest.fixture
def flow(container: Container, provider: FakeProvider) -> Flow:
    return Flow(container, provider)


async def test_the_request_carries_state_nonce_and_a_pkce_s256_challenge(flow: Flow) -> None:
    started, q = await flow.start()
    assert q["response_type"] == "code"
    assert q["client_id"] == CLIENT_ID
    assert q["redirect_uri"] == BASE + "/api/v1/auth/oidc/callback"
    assert q["scope"] == "openid profile email"
    assert q["code_challenge_method"] == "S256"
    assert len({q["state"], q["nonce"], started.browser_secret}) == 3
    _started, other = await flow.start()
    assert (other["state"], other["nonce"]) != (q["state"], q["nonce"])
    await flow.back(started, q)
    ((form, headers),) = flow.provider.token_requests()
    assert s256(form["code_verifier"]) == q["code_challenge"]  # the verifier only we kept
    assert form["redirect_uri"] == q["redirect_uri"]
    assert headers["authorization"].startswith("Basic ")


async def test_a_sign_in_makes_the_account_and_a_session(flow: Flow) -> None:
    token, session, logout_url = await flow.sign_in(groups=["staff", "tidings-admins"],
                                                    department="Engineering")  # fmt: skip
    user = session.user
    assert (user.username, user.display_name, user.email) == (
        "alice", "Alice Liddell", "alice@example.test",
    )  # fmt: skip
    assert user.origin is UserOrigin.OIDC
    assert user.role is OrgRole.ADMIN  # from the group
    assert (await flow.c.services.auth.authenticate(token)).user.id == user.id
    assert logout_url is not None
    assert query_of(logout_url) == {"client_id": CLIENT_ID, "post_logout_redirect_uri": BASE + "/"}
    (login,) = await flow.audit(AuditAction.LOGIN)
    assert (login["method"], login["subject"], login["second_factor"]) == (
        "oidc", "subject-alice", "idp",
    )  # fmt: skip
    assert [e["provider"] for e in await flow.audit(AuditAction.IDENTITY_USER_CREATED)] == [
        flow.svc.provider
    ]


async def test_the_next_sign_in_keeps_the_account_in_step(flow: Flow) -> None:
    _t, first, _l = await flow.sign_in(groups=["tidings-admins"])
    _t, again, _l = await flow.sign_in(name="Alice L.", groups=["staff"])
    assert again.user.id == first.user.id
    assert again.user.display_name == "Alice L."
    assert again.user.role is OrgRole.MEMBER  # out of the admins' group: no longer admin


async def test_the_account_follows_the_subject_not_the_username(flow: Flow) -> None:
    _t, first, _l = await flow.sign_in()
    _t, renamed, _l = await flow.sign_in(preferred_username="alice.new")
    assert renamed.user.id == first.user.id  # the same sub: the same account


async def test_a_replayed_state_is_refused(flow: Flow) -> None:
    started, q = await flow.start()
    await flow.back(started, q)
    await flow.refused("state", started, q)
    refusals = await flow.audit(AuditAction.LOGIN_FAILED)
    assert [(r["method"], r["refused"]) for r in refusals] == [("oidc", "state")]
    assert "already used" in str(refusals[0]["why"])


async def test_another_browsers_state_is_refused(flow: Flow) -> None:
    """A callback URL carried to another browser (login CSRF) finds no sign-in there."""
    started, q = await flow.start()
    await flow.refused("state", started, q, browser="the-victims-cookie")
    started, q = await flow.start()
    await flow.refused("state", started, q, browser=None)


async def test_an_unknown_or_malformed_state_is_refused(flow: Flow) -> None:
    started, _q = await flow.start()
    for state in (None, "", "no-such-state", "x" * 5000, "<script>", "a\u0000b", "é"):
        with pytest.raises(OidcRefused) as caught:
            await flow.svc.callback(
                state=state, code="c", error=None, browser_secret=started.browser_secret,
                address=ADDRESS,
            )  # fmt: skip
        assert caught.value.reason == "state"
    assert flow.provider.token_requests() == []  # nothing was redeemed


async def test_a_sign_in_that_took_too_long_is_refused(flow: Flow, container: Container) -> None:
    started, q = await flow.start()
    clock = container.deps.clock
    assert isinstance(clock, FakeClock)
    clock.advance(container.settings.oidc_login_timeout_seconds + 1)
    with pytest.raises(OidcRefused) as caught:
        await flow.svc.callback(
            state=q["state"], code="c", error=None, browser_secret=started.browser_secret,
            address=ADDRESS,
        )  # fmt: skip
    assert caught.value.reason == "state"


async def test_a_token_of_another_issuer_is_refused(flow: Flow) -> None:
    started, q = await flow.start()
    await flow.refused("invalid_token", started, q, iss="https://evil.example")
    (refusal,) = await flow.audit(AuditAction.LOGIN_FAILED)
    assert refusal["refused"] == "invalid_token" and "iss" in str(refusal["error"])


async def test_an_expired_token_is_refused(flow: Flow) -> None:
    started, q = await flow.start()
    t = int(datetime.now(UTC).timestamp())
    await flow.refused("invalid_token", started, q, iat=t - 3600, exp=t - 600)


async def test_a_tampered_signature_is_refused(flow: Flow) -> None:
    started, q = await flow.start()
    good = flow.provider.sign(flow.provider.claims(q["nonce"]))
    await flow.refused("invalid_token", started, q, token=tamper(good))
    async with flow.c.store.read() as tx:
        assert await tx.users_by_usernames(["alice"]) == []  # no account was made


async def test_a_token_for_another_sign_in_is_refused(flow: Flow) -> None:
    """A token minted for another sign-in (its nonce) cannot finish this one."""
    started, q = await flow.start()
    other = flow.provider.sign(flow.provider.claims("the-nonce-of-another-sign-in"))
    await flow.refused("invalid_token", started, q, token=other)


async def test_the_providers_refusals_are_told_apart(flow: Flow) -> None:
    for error, reason, said in (
        ("access_denied", "cancelled", "access_denied"),
        ("server_error", "provider", "server_error"),
        ("<b>oops</b>", "provider", "malformed"),
    ):
        started, q = await flow.start()
        with pytest.raises(OidcRefused) as caught:
            await flow.svc.callback(
                state=q["state"], code=None, error=error, browser_secret=started.browser_secret,
                address=ADDRESS,
            )  # fmt: skip
        assert caught.value.reason == reason
        assert (await flow.audit(AuditAction.LOGIN_FAILED))[-1]["provider_error"] == said
    started, q = await flow.start()
    flow.provider.token_answer = lambda form: (400, {"error": "invalid_grant"})
    with pytest.raises(OidcRefused) as caught:
        await flow.svc.callback(
            state=q["state"], code="c", error=None, browser_secret=started.browser_secret,
            address=ADDRESS,
        )  # fmt: skip
    assert caught.value.reason == "provider"


async def test_a_local_account_of_the_same_name_is_not_taken_over(
    flow: Flow, container: Container
) -> None:
    await container.services.users.create(None, "alice", "a-long-local-passphrase-77")
    started, q = await flow.start()
    await flow.refused("not_allowed", started, q)
    assert (await flow.audit(AuditAction.LOGIN_FAILED))[-1]["why"] == "conflict"


async def test_a_disabled_account_cannot_sign_in(flow: Flow, container: Container) -> None:
    _t, session, _l = await flow.sign_in()
    async with container.store.write() as tx:
        await tx.set_disabled(session.user.id, True)
    started, q = await flow.start()
    await flow.refused("disabled", started, q)


async def test_claims_without_a_username_are_refused(flow: Flow) -> None:
    started, q = await flow.start()
    await flow.refused("not_allowed", started, q, preferred_username="@@@")


async def test_an_entra_style_username_loses_its_domain(flow: Flow) -> None:
    _t, session, _l = await flow.sign_in(preferred_username="Carol.Smith@Contoso.example")
    assert session.user.username == "carol.smith"


async def test_the_hand_off_works_once_and_in_its_browser(flow: Flow) -> None:
    started, q = await flow.start()
    handoff = await flow.back(started, q)
    with pytest.raises(InvalidCredentials):
        await flow.svc.exchange(
            handoff, "another-browser", device="d", address=ADDRESS, request_base=BASE
        )
    # the attempt from elsewhere spent it: the real browser signs in again
    with pytest.raises(InvalidCredentials):
        await flow.svc.exchange(
            handoff, started.browser_secret, device="d", address=ADDRESS, request_base=BASE
        )
    started, q = await flow.start()
    handoff = await flow.back(started, q)
    await flow.svc.exchange(
        handoff, started.browser_secret, device="d", address=ADDRESS, request_base=BASE
    )
    with pytest.raises(InvalidCredentials):
        await flow.svc.exchange(
            handoff, started.browser_secret, device="d", address=ADDRESS, request_base=BASE
        )
    for garbage in (None, "", "x" * 10_000, "\u202e"):
        with pytest.raises(InvalidCredentials):
            await flow.svc.exchange(
                garbage, started.browser_secret, device="d", address=ADDRESS, request_base=BASE
            )


async def test_a_required_authentication_method_is_enforced(
    flow: Flow, container: Container
) -> None:
    strict = Container(
        container.settings.model_copy(update={"oidc_required_amr": "mfa"}),
        store=container.store,
        clock=container.deps.clock,
    )
    strict_flow = Flow(strict, flow.provider)
    try:
        started, q = await strict_flow.start()
        await strict_flow.refused("not_allowed", started, q, amr=["pwd"])
        _t, session, _l = await strict_flow.sign_in(amr=["pwd", "mfa"])
        assert session.user.username == "alice"
    finally:
        assert strict.oidc_client is not None
        await strict.oidc_client.close()


async def test_sign_ins_in_progress_are_bounded(flow: Flow, container: Container) -> None:
    for _ in range(container.settings.oidc_max_pending_logins):
        await flow.start()
    with pytest.raises(RateLimited):
        await flow.start()
    clock = container.deps.clock
    assert isinstance(clock, FakeClock)
    clock.advance(container.settings.oidc_login_timeout_seconds + 1)  # they expire
    await flow.start()


async def test_an_unreachable_provider_is_unavailable(flow: Flow) -> None:
    from tidings.core.errors import Unavailable

    flow.provider.stop()
    assert flow.svc.client is not None
    flow.svc.client._discovery.value = None
    with pytest.raises(Unavailable):
        await flow.svc.start(BASE, ADDRESS)
    (refusal,) = await flow.audit(AuditAction.LOGIN_FAILED)
    assert refusal["refused"] == "unavailable"
    flow.provider.start()  # the fixture stops it again


async def test_the_admin_sees_the_configuration_without_the_secret(
    flow: Flow, container: Container
) -> None:
    owner = await container.services.users.create(
        None, "boss", "a-long-owner-passphrase-42", role=OrgRole.OWNER
    )
    config = flow.svc.configuration(owner)
    assert config["issuer"] == flow.provider.issuer and config["client_secret_set"] is True
    assert CLIENT_SECRET not in repr(config)
    report = await flow.svc.test(owner)
    assert report["ok"] is True and report["keys"] == 1 and report["pkce_s256"] is True
    member = await container.services.users.create(None, "pat", "a-long-member-passphrase-9")
    from tidings.core.errors import Forbidden

    with pytest.raises(Forbidden):
        flow.svc.configuration(member)
    with pytest.raises(Forbidden):
        await flow.svc.test(member)
