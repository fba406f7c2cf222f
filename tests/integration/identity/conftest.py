"""A real OpenLDAP server per test (tests/ldap_server.py), loaded with the test tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ldap_server import Slapd, ldap_settings, running_slapd


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    with running_slapd(tmp_path / "slapd") as server:
        yield server


@pytest.fixture
def container_settings(slapd: Slapd) -> dict[str, object]:
    """The `container` fixture (tests/conftest.py) on this directory."""
    return ldap_settings(slapd, ldap_sync_interval_seconds=3600)  # no worker runs here
