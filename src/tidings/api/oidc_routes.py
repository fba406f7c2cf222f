"""REST routes of OpenID Connect sign-in (services/oidc.py). The browser navigates to
`start` and comes back to `callback`; both answer redirects. What binds a sign-in to the
browser, and the one-time hand-off of its result, are HttpOnly cookies scoped to these
paths: no token or code of Tidings' is ever put in a URL. The web client then POSTs
`exchange` and gets what POST /auth/login answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Request
from starlette.responses import RedirectResponse, Response

from tidings.api import oidc_schemas as os_
from tidings.api.routes import ERRORS, Auth, Svc, client_ip, json
from tidings.core.clock import rfc3339
from tidings.core.errors import RateLimited, Unavailable
from tidings.protocol.wire import user_json
from tidings.services.audit import client_address
from tidings.services.oidc import OidcRefused

router = APIRouter(prefix="/api/v1", responses=ERRORS)

COOKIE_PATH = "/api/v1/auth/oidc"
BROWSER_COOKIE = "tidings_oidc_browser"  # binds a sign-in to the browser that started it
HANDOFF_COOKIE = "tidings_oidc_handoff"  # the one-time code of a finished sign-in
# From /api/v1/auth/oidc/<endpoint> back to the web client (relative: works behind a
# proxy that serves Tidings under a path). The fragment never reaches a server.
WEB_APP = "../../../../"
MAX_PARAM = 8192  # longer query parameters are refused before any work


def _base(request: Request) -> str:
    return str(request.base_url)


def _back(fragment: str) -> RedirectResponse:
    return RedirectResponse(WEB_APP + "#" + fragment, status_code=303)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back, not cross-site POSTs
        secure=request.url.scheme == "https",
    )


def _forget(response: Response, request: Request) -> None:
    for name in (BROWSER_COOKIE, HANDOFF_COOKIE):
        _cookie(response, request, name, "", 0)


@router.get("/auth/oidc", response_model=os_.OidcInfoOut, tags=["auth"])
async def oidc_info(svc: Svc) -> Response:
    """Whether single sign-on is on (the login form shows its button then)."""
    return json({"oidc": svc.oidc.info()})


@router.get(
    "/auth/oidc/start",
    status_code=303,
    tags=["auth"],
    response_class=RedirectResponse,
    responses={303: {"description": "to the provider's authorization endpoint"}},
)
async def oidc_start(svc: Svc, request: Request) -> Response:
    """Begin a sign-in: the browser goes to the provider (a new `state`, `nonce` and PKCE
    challenge each time), with a cookie binding the sign-in to this browser."""
    address = client_ip(request)
    client_address.set(address)
    svc.oidc.check_enabled()  # NotFound when OIDC is off, before anything else
    try:
        started = await svc.oidc.start(_base(request), address)
    except RateLimited:
        return _back("oidc-error=rate_limited")
    except Unavailable:
        return _back("oidc-error=unavailable")
    response = RedirectResponse(started.url, status_code=303)
    _cookie(
        response,
        request,
        BROWSER_COOKIE,
        started.browser_secret,
        svc.oidc.limits.oidc_login_timeout_seconds,
    )
    return response


Param = Annotated[str | None, Query(max_length=MAX_PARAM)]


@router.get(
    "/auth/oidc/callback",
    status_code=303,
    tags=["auth"],
    response_class=RedirectResponse,
    responses={303: {"description": "back to the web client: #oidc=done or #oidc-error=…"}},
)
async def oidc_callback(
    svc: Svc,
    request: Request,
    state: Param = None,
    code: Param = None,
    error: Param = None,
    browser: Annotated[str | None, Cookie(alias=BROWSER_COOKIE)] = None,
) -> Response:
    """Where the provider sends the browser back (`code` and `state`, or `error`). The
    web client is told only `done` (the hand-off is a cookie) or a reason (see REASONS)."""
    address = client_ip(request)
    client_address.set(address)
    svc.oidc.check_enabled()
    try:
        handoff = await svc.oidc.callback(
            state=state, code=code, error=error, browser_secret=browser, address=address
        )
    except OidcRefused as exc:
        response = _back(f"oidc-error={exc.reason}")
        _forget(response, request)
        return response
    except RateLimited:
        return _back("oidc-error=rate_limited")
    response = _back("oidc=done")
    _cookie(response, request, HANDOFF_COOKIE, handoff, svc.oidc.limits.oidc_login_timeout_seconds)
    return response


@router.post("/auth/oidc/exchange", response_model=os_.OidcLoginOut, tags=["auth"])
async def oidc_exchange(
    body: os_.OidcExchangeIn,
    svc: Svc,
    request: Request,
    browser: Annotated[str | None, Cookie(alias=BROWSER_COOKIE, max_length=MAX_PARAM)] = None,
    handoff: Annotated[str | None, Cookie(alias=HANDOFF_COOKIE, max_length=MAX_PARAM)] = None,
) -> Response:
    """Trade the finished sign-in (its hand-off cookie, once) for a session token."""
    address = client_ip(request)
    client_address.set(address)
    token, sess, logout_url = await svc.oidc.exchange(
        handoff, browser, device=body.device or "", address=address, request_base=_base(request)
    )
    response = json(
        {
            "token": token,
            "user": user_json(sess.user),
            "expires_at": rfc3339(sess.expires_at),
            "second_factor_required": False,
            "logout_url": logout_url,
        }
    )
    _forget(response, request)
    return response


# --- administration -------------------------------------------------------------------
@router.get("/identity/oidc", response_model=os_.OidcConfigEnvelope, tags=["organization"])
async def oidc_config(svc: Svc, me: Auth) -> Response:
    """The single sign-on settings (admins; the client secret is never shown)."""
    return json({"oidc": svc.oidc.configuration(me.user)})


@router.post("/identity/oidc/test", response_model=os_.OidcTestOut, tags=["organization"])
async def oidc_test(svc: Svc, me: Auth) -> Response:
    """Fetch the provider's discovery document and keys now, and report (admins)."""
    return json(await svc.oidc.test(me.user))
