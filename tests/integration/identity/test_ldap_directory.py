"""The LDAP adapter (identity/ldap.py) against a real slapd: search-then-bind and direct
bind, the attribute and group mapping, LDAPS and StartTLS with certificate checks, and
errors that are outages, never wrong passwords."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ldap_server import (
    AD_TREE,
    KATE_GUID,
    PASSWORDS,
    PEOPLE,
    SEARCH_PASSWORD,
    Slapd,
    ad_settings,
    dn_of,
    ldap_settings,
    require_slapd,
)
from tidings.app.settings import Settings, limits_from
from tidings.core.errors import Unavailable
from tidings.core.models import OrgRole
from tidings.identity.ldap import LdapConfig, LdapDirectory


def directory(server: Slapd, **overrides: object) -> LdapDirectory:
    settings = Settings.model_validate(ldap_settings(server, **overrides))
    return LdapDirectory(limits_from(settings, LdapConfig))


async def test_search_then_bind_maps_the_entry(slapd: Slapd) -> None:
    d = directory(slapd)
    entry = await d.authenticate("kate", PASSWORDS["kate"])
    assert entry is not None
    assert entry.dn == dn_of("kate")
    p = entry.profile
    assert (p.username, p.display_name, p.email) == ("kate", "Kate Lin", "kate@example.org")
    assert p.departments == ("Engineering/Platform",)
    assert p.role is OrgRole.ADMIN and not p.disabled
    assert len(entry.subject) == 36  # the entryUUID, stable across renames
    li = await d.authenticate("li", PASSWORDS["li"])
    assert li is not None and li.profile.display_name == "李雷"
    assert li.profile.role is OrgRole.MEMBER  # no mapped group: the default role
    sam = await d.authenticate("sam", PASSWORDS["sam"])
    assert sam is not None and sam.profile.role is OrgRole.GUEST  # by the group's cn
    dora = await d.authenticate("dora", PASSWORDS["dora"])
    assert dora is not None and dora.profile.disabled


async def test_wrong_passwords_unknown_names_and_injection_are_refusals(slapd: Slapd) -> None:
    d = directory(slapd)
    assert await d.authenticate("kate", "wrong") is None
    assert await d.authenticate("kate", PASSWORDS["li"]) is None
    assert await d.authenticate("nobody", "x") is None
    # an empty password would be an unauthenticated bind, which slapd accepts
    assert await d.authenticate("kate", "") is None
    # filter metacharacters are escaped: "*" matches no one, ")(uid=*" breaks nothing
    assert await d.authenticate("*", PASSWORDS["kate"]) is None
    assert await d.authenticate("kate)(uid=*", PASSWORDS["kate"]) is None
    assert await d.authenticate("k*", PASSWORDS["kate"]) is None


async def test_direct_bind_mode(slapd: Slapd) -> None:
    d = directory(
        slapd,
        ldap_bind_mode="direct",
        ldap_user_dn_template=f"uid={{username}},ou=Platform,ou=Engineering,{PEOPLE}",
        ldap_bind_dn="",
        ldap_bind_password=None,
    )
    entry = await d.authenticate("kate", PASSWORDS["kate"])
    assert entry is not None and entry.profile.username == "kate"
    assert await d.authenticate("kate", "wrong") is None


async def test_ldaps_checks_the_certificate(slapd: Slapd, tmp_path: object) -> None:
    good = directory(slapd, ldap_url=slapd.ldaps_url)
    assert await good.authenticate("kate", PASSWORDS["kate"]) is not None
    import trustme

    other = trustme.CA()
    wrong_ca = slapd.root / "other-ca.pem"
    other.cert_pem.write_to_path(str(wrong_ca))
    bad = directory(slapd, ldap_url=slapd.ldaps_url, ldap_ca_file=str(wrong_ca))
    with pytest.raises(Unavailable):
        await bad.authenticate("kate", PASSWORDS["kate"])
    # the name is checked too: the certificate is for 127.0.0.1 and localhost only
    # (a wrong CA above, the system's CAs here: neither knows the test CA)
    system = directory(slapd, ldap_url=slapd.ldaps_url, ldap_ca_file=None)
    with pytest.raises(Unavailable):
        await system.authenticate("kate", PASSWORDS["kate"])


async def test_start_tls_checks_the_certificate(slapd: Slapd) -> None:
    good = directory(slapd, ldap_start_tls=True)
    assert await good.authenticate("kate", PASSWORDS["kate"]) is not None
    import trustme

    wrong_ca = slapd.root / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca))
    bad = directory(slapd, ldap_start_tls=True, ldap_ca_file=str(wrong_ca))
    with pytest.raises(Unavailable):
        await bad.authenticate("kate", PASSWORDS["kate"])


async def test_an_unreachable_or_misconfigured_directory_is_unavailable(slapd: Slapd) -> None:
    wrong_service = directory(slapd, ldap_bind_password="not-the-password")
    with pytest.raises(Unavailable, match="service account"):
        await wrong_service.authenticate("kate", PASSWORDS["kate"])
    slapd.stop()
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await directory(slapd).authenticate("kate", PASSWORDS["kate"])
    assert time.monotonic() - started < 5


async def test_entries_and_departments_from_an_attribute(slapd: Slapd) -> None:
    d = directory(slapd)
    found = {e.profile.username: e for e in await d.entries()}
    assert sorted(found) == ["dora", "kate", "li", "sam"]
    assert found["li"].profile.departments == ("Engineering",)
    assert found["sam"].profile.departments == ("Sales",)
    by_attr = directory(slapd, ldap_department_source="attribute", ldap_department_attribute="ou")
    assert all(e.profile.departments == () for e in await by_attr.entries())
    none = directory(slapd, ldap_department_source="none", ldap_group_roles={})
    for e in await none.entries():
        assert e.profile.departments is None and e.profile.role is None
    limited = directory(slapd, ldap_sync_max_entries=2)
    with pytest.raises(Unavailable, match="ldap_sync_max_entries"):
        await limited.entries()


async def test_check_reports_each_step_and_never_shows_secrets(slapd: Slapd) -> None:
    d = directory(slapd)
    steps = await d.check("kate", PASSWORDS["kate"])
    assert [(s.step, s.ok) for s in steps] == [
        ("connect", True),
        ("bind", True),
        ("search", True),
        ("find", True),
        ("sign-in", True),
    ]
    bad = await directory(slapd, ldap_bind_password="nope").check(None, None)
    assert [(s.step, s.ok) for s in bad] == [("connect", True), ("bind", False)]
    described = d.describe()
    assert described["bind_password_set"] is True
    assert SEARCH_PASSWORD not in repr(described) and SEARCH_PASSWORD not in repr(steps)


async def test_the_active_directory_example_on_an_ad_shaped_tree(tmp_path: Path) -> None:
    """docs/identity.md's Active Directory settings, against a slapd holding AD's user
    and group classes: sAMAccountName, the binary objectGUID, userAccountControl's
    disabled bit, the department attribute, memberOf for the role; over StartTLS."""
    require_slapd()
    server = Slapd(tmp_path / "ad", flavour="ad")
    server.start()
    try:
        server.ldif(AD_TREE)
        settings = Settings.model_validate(ad_settings(server))
        d = LdapDirectory(limits_from(settings, LdapConfig))
        kate = await d.authenticate("kate", PASSWORDS["kate"])
        assert kate is not None
        assert kate.subject == KATE_GUID  # the GUID as AD tools print it
        p = kate.profile
        assert (p.username, p.display_name, p.email) == (
            "kate",
            "Kate Lin",
            "kate@corp.example.com",
        )
        assert p.departments == ("Engineering/Platform",)
        assert p.role is OrgRole.ADMIN and not p.disabled
        dora = await d.authenticate("dora", PASSWORDS["dora"])
        assert dora is not None and dora.profile.disabled  # userAccountControl 514
        assert dora.profile.role is OrgRole.MEMBER
        assert await d.authenticate("kate", "wrong") is None
    finally:
        server.stop()
