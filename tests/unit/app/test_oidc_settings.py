"""The OpenID Connect settings: refused when they could not work or would be unsafe
(an http issuer off loopback, no client id, no secret for a confidential client, a
group mapping that names no role), and the service's limits are the settings of the
same names (as tests/unit/app/test_settings.py checks for the other limit classes)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
from pydantic import ValidationError

from tidings.app.settings import Settings, limits_from
from tidings.services.oidc import OidcLimits, parse_group_roles

GOOD: dict[str, Any] = {
    "oidc_issuer": "https://sso.acme.example/realms/acme",
    "oidc_client_id": "tidings",
    "oidc_client_secret": "s3cret",
}


def test_oidc_is_off_by_default() -> None:
    assert Settings.model_validate({}).oidc_issuer is None
    assert Settings.model_validate({"oidc_issuer": ""}).oidc_issuer is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"oidc_issuer": "http://sso.acme.example"}, "loopback"),
        ({"oidc_issuer": "ftp://sso.acme.example"}, "https"),
        ({"oidc_issuer": "https://sso.acme.example/?x=1"}, "query"),
        ({"oidc_client_id": ""}, "oidc_client_id"),
        ({"oidc_client_secret": None}, "oidc_client_secret"),
        ({"oidc_scopes": "profile email"}, "openid"),
        ({"oidc_group_roles": "admins=owner"}, "role"),
        ({"oidc_group_roles": "admins"}, "group=role"),
        ({"oidc_clock_skew_seconds": 3600}, "600"),
    ],
)
def test_unusable_oidc_settings_are_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({**GOOD, **changes})
    assert says in str(caught.value)


def test_good_oidc_settings() -> None:
    s = Settings.model_validate(
        {**GOOD, "oidc_group_roles": "tidings-admins=admin, partners = guest"}
    )
    assert parse_group_roles(s.oidc_group_roles) == [
        ("tidings-admins", "admin"),
        ("partners", "guest"),
    ]
    public = Settings.model_validate(
        {**GOOD, "oidc_client_secret": None, "oidc_token_auth_method": "none"}
    )
    assert public.oidc_client_secret is None
    loopback = Settings.model_validate({**GOOD, "oidc_issuer": "http://127.0.0.1:9000"})
    assert loopback.oidc_issuer == "http://127.0.0.1:9000"


def test_the_oidc_limits_are_the_settings_of_the_same_names() -> None:
    setting_types = typing.get_type_hints(Settings)
    limit_types = typing.get_type_hints(OidcLimits)
    built = limits_from(Settings.model_construct(), OidcLimits)
    for field in dataclasses.fields(OidcLimits):
        assert field.default is dataclasses.MISSING, field.name
        assert limit_types[field.name] == setting_types[field.name], field.name
        default = Settings.model_fields[field.name].get_default(call_default_factory=True)
        assert getattr(built, field.name) == default, field.name
