"""After a test run: no server log of the run may hold a secret (issue 5). Every live
server's log is kept in the artifacts directory; they are all scanned when the session
ends, and the run fails if one holds a password, a token, or a TOTP secret."""

from __future__ import annotations

import time

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.secret_scan import scan

_STARTED = time.time()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not ARTIFACTS.is_dir():
        return
    logs = [p for p in ARTIFACTS.glob("*.log") if p.stat().st_mtime >= _STARTED - 1]
    found = scan(logs)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "SECRETS IN SERVER LOGS of this run", red=True)
            for line in found[:20]:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
