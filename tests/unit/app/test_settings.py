"""Each default is written once, in Settings: the services' limit classes declare none,
every field of theirs is the setting of the same name and type, and the container's
limits_from fills them all."""

from __future__ import annotations

import dataclasses
import typing
from datetime import timedelta

import pytest

from tidings.app.settings import Settings, limits_from
from tidings.services.context import (
    FileLimits,
    IdentityLimits,
    ImageLimits,
    IntegrationLimits,
    JobLimits,
    Limits,
    ScimLimits,
    SearchLimits,
    SecurityLimits,
    WebhookLimits,
)

LIMIT_CLASSES = [
    Limits,
    SecurityLimits,
    JobLimits,
    IdentityLimits,
    IntegrationLimits,
    ScimLimits,
    WebhookLimits,
    FileLimits,
    ImageLimits,
    SearchLimits,
]


@pytest.mark.parametrize("limits", LIMIT_CLASSES)
def test_limit_classes_declare_no_defaults(limits: type) -> None:
    with_default = [
        f.name
        for f in dataclasses.fields(limits)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert with_default == []


@pytest.mark.parametrize("limits", LIMIT_CLASSES)
def test_every_limit_is_a_setting_of_the_same_type(limits: type) -> None:
    setting_types = typing.get_type_hints(Settings)
    limit_types = typing.get_type_hints(limits)
    for field in dataclasses.fields(limits):
        assert field.name in Settings.model_fields, f"{field.name} is not a setting"
        assert limit_types[field.name] == setting_types[field.name], field.name


@pytest.mark.parametrize("limits", LIMIT_CLASSES)
def test_the_limits_defaults_are_the_settings_defaults(limits: type) -> None:
    built = limits_from(Settings.model_construct(), limits)  # defaults, no environment
    for field in dataclasses.fields(limits):
        default = Settings.model_fields[field.name].get_default(call_default_factory=True)
        assert getattr(built, field.name) == default, field.name


def test_settings_reach_the_limits() -> None:
    settings = Settings.model_construct(
        edit_window_seconds=5,
        token_ttl_seconds=120,
        login_lockout_seconds=7,
        login_failure_window_seconds=8,
        login_max_delay_seconds=9,
        rate_send_per_user=3,
        totp_issuer="Acme",
    )
    limits = limits_from(settings, Limits)
    assert (limits.edit_window, limits.token_ttl) == (timedelta(seconds=5), timedelta(minutes=2))
    security = limits_from(settings, SecurityLimits)
    assert (security.login_lockout, security.login_failure_window, security.login_max_delay) == (
        timedelta(seconds=7),
        timedelta(seconds=8),
        timedelta(seconds=9),
    )
    assert (security.rate_send_per_user, security.totp_issuer) == (3, "Acme")
    assert security.rate_login_per_user == Settings.model_fields["rate_login_per_user"].default


@pytest.mark.parametrize(
    "url", ["http://ldap.example.org", "ldap://", "ldap.example.org", "ldaps:///x", "ldap:// x"]
)
def test_ldap_url_must_be_ldap_or_ldaps_urls(url: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="ldap_url"):
        Settings(ldap_url=url)


def test_ldap_urls_and_off() -> None:
    assert Settings(ldap_url="  ").ldap_url is None
    two = Settings(ldap_url="ldap://dc1:389  ldaps://dc2").ldap_url
    assert two == "ldap://dc1:389 ldaps://dc2"
    with pytest.raises(ValueError, match="role"):
        Settings(ldap_group_roles={"cn=x": "owner"})  # a directory never makes owners


def test_scheduled_backups_are_off_by_default_and_at_least_a_minute_apart() -> None:
    from pydantic import ValidationError

    assert Settings().backup_interval_seconds == 0
    assert Settings(backup_interval_seconds=60).backups_dir == Settings().data_dir / "backups"
    with pytest.raises(ValidationError, match="at least 60 seconds"):
        Settings(backup_interval_seconds=30)
