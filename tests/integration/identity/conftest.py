"""A real OpenLDAP server per test (tests/ldap_server.py), loaded with the test tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ldap_server import TREE, Slapd, ldap_settings, require_slapd


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    require_slapd()
    server = Slapd(tmp_path / "slapd")
    server.start()
    try:
        server.ldif(TREE)
        yield server
    finally:
        server.stop()


@pytest.fixture
def container_settings(slapd: Slapd) -> dict[str, object]:
    """The `container` fixture (tests/conftest.py) on this directory."""
    return ldap_settings(slapd, ldap_sync_interval_seconds=3600)  # no worker runs here
