"""`tidings oidc test`: the admin's check of the single sign-on settings from the command
line, against a provider the test controls on loopback (tests/oidc_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import tidings
from tests.oidc_helpers import CLIENT_ID, CLIENT_SECRET, FakeProvider

pytestmark = pytest.mark.e2e


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider().start()
    try:
        yield p
    finally:
        p.stop()


def test_oidc_test_reports_the_provider(tmp_path: Path, provider: FakeProvider) -> None:
    env = {
        "TIDINGS_OIDC_ISSUER": provider.issuer,
        "TIDINGS_OIDC_CLIENT_ID": CLIENT_ID,
        "TIDINGS_OIDC_CLIENT_SECRET": CLIENT_SECRET,
    }
    assert tidings(tmp_path, "migrate").returncode == 0
    out = tidings(tmp_path, "oidc", "test", env=env)
    assert out.returncode == 0, out.stderr
    assert provider.issuer + "/token" in out.stdout and "RS256" in out.stdout
    assert CLIENT_SECRET not in out.stdout + out.stderr
    provider.discovery_changes["issuer"] = "https://impostor.example"
    out = tidings(tmp_path, "oidc", "test", env=env)
    assert out.returncode == 1 and "impostor" in out.stdout
    off = tidings(tmp_path, "oidc", "test")
    assert off.returncode == 1 and "OpenID Connect is off" in off.stderr
