"""`tidings oidc test`: the admin's check of the single sign-on settings from the command
line (in-process, both backends), against a provider the test controls on loopback
(tests/oidc_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cli.conftest import Cli, run
from tests.oidc_helpers import CLIENT_ID, CLIENT_SECRET, FakeProvider


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider().start()
    try:
        yield p
    finally:
        p.stop()


async def test_oidc_test_reports_the_provider(cli: Cli, provider: FakeProvider) -> None:
    env = {
        "TIDINGS_OIDC_ISSUER": provider.issuer,
        "TIDINGS_OIDC_CLIENT_ID": CLIENT_ID,
        "TIDINGS_OIDC_CLIENT_SECRET": CLIENT_SECRET,
    }
    out = await run(cli, "oidc", "test", env=env)
    assert out.exit_code == 0, out.stderr
    assert provider.issuer + "/token" in out.stdout and "RS256" in out.stdout
    assert CLIENT_SECRET not in out.stdout + out.stderr
    provider.discovery_changes["issuer"] = "https://impostor.example"
    out = await run(cli, "oidc", "test", env=env)
    assert out.exit_code == 1 and "impostor" in out.stdout
    off = await run(cli, "oidc", "test")
    assert off.exit_code == 1 and "OpenID Connect is off" in off.stderr
