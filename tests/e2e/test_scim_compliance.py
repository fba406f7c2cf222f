"""The SCIM compliance checker `scim2-tester` against the real `tidings serve` process,
on both backends, with a token from `tidings scim token` as an operator makes one.

Every check the checker runs must pass. A check may only be skipped for a reason
written down in SKIP_REASONS below (and in docs/identity.md, "SCIM compliance");
any other skip, and any error, fails the test with the checker's own reason."""

from __future__ import annotations

import asyncio

import pytest

from tests import processes
from tests.conftest import Backend, LiveServer

pytestmark = pytest.mark.e2e

# Checks the checker may skip, and why it does. A skip whose reason matches none of
# these fails the test.
SKIP_REASONS = {
    # POST /.search across every resource type at once is optional (RFC 7644 3.4.3):
    # Tidings answers 501 there, as the RFC says a server that does not do it answers.
    # /Users/.search and /Groups/.search are served (tests/integration/api/test_scim.py).
    "searching several resource types at once is not supported",
}
PASSING = {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}


def scim_token(server: LiveServer, backend: Backend) -> str:
    import os

    out = processes.run(
        [
            "--data-dir",
            str(server.data_dir),
            "scim",
            "token",
            "--name",
            "scim2-tester",
            "-q",
        ],
        timeout=60,
        env={**os.environ, **backend.env},
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("scim_") and "\n" not in token
    return token


def run_checker(url: str, token: str) -> list[object]:
    import httpx2
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server

    with httpx2.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        results: list[object] = check_server(SyncSCIMClient(http))
    return results


async def test_scim2_tester_finds_nothing_wrong(live_server: LiveServer, backend: Backend) -> None:
    token = scim_token(live_server, backend)
    results = await asyncio.to_thread(run_checker, live_server.url + "/scim/v2", token)
    failed, unexplained = [], []
    for result in results:
        status = result.status.name  # type: ignore[attr-defined]
        where = f"{result.resource_type or ''} {result.title}: {result.reason}"  # type: ignore[attr-defined]
        if status == "SKIPPED":
            if not any(reason in str(result.reason) for reason in SKIP_REASONS):  # type: ignore[attr-defined]
                unexplained.append(where)
        elif status not in PASSING:
            failed.append(f"{status} {where}")
    assert failed == [] and unexplained == [], "\n".join(failed + unexplained)
    assert len(results) > 40  # the checker ran its whole suite
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status.name] = counts.get(result.status.name, 0) + 1  # type: ignore[attr-defined]
    print("scim2-tester:", len(results), "checks", counts)
