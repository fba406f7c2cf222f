"""Request bodies and response shapes of OpenID Connect sign-in (api/oidc_routes.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tidings.api.schemas import Body, LoginOut


class OidcInfo(BaseModel):
    enabled: bool
    provider_name: str = Field(description="the button says 'Sign in with <provider_name>'")


class OidcInfoOut(BaseModel):
    oidc: OidcInfo


class OidcExchangeIn(Body):
    device: str | None = Field(default=None, max_length=120)


class OidcLoginOut(LoginOut):
    logout_url: str | None = Field(
        default=None,
        description="the provider's end-session URL (RP-initiated logout): the web client "
        "sends the browser there after POST /auth/logout",
    )


class OidcClaimsOut(BaseModel):
    username: str
    display_name: str
    email: str
    groups: str | None
    department: str | None


class OidcGroupRoleOut(BaseModel):
    group: str
    role: str


class OidcConfigOut(BaseModel):
    """When single sign-on is off, only `enabled` (false)."""

    enabled: bool
    issuer: str | None = None
    client_id: str | None = None
    client_secret_set: bool = Field(False, description="the secret itself is never shown")
    token_auth_method: str | None = None
    scopes: list[str] = Field(default_factory=list)
    redirect_url: str | None = None
    provider_name: str | None = None
    claims: OidcClaimsOut | None = None
    group_roles: list[OidcGroupRoleOut] = Field(default_factory=list)
    required_amr: str | None = None


class OidcConfigEnvelope(BaseModel):
    oidc: OidcConfigOut


class OidcTestOut(BaseModel):
    ok: bool
    issuer: str
    error: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    algorithms: list[str] | None = None
    keys: int | None = None
    pkce_s256: bool | None = None
