"""Login protection on a real database with a clock the test moves: the slow-down
schedule, the lockout and its end, the address lock, and that unknown and existing
names are treated alike. (tests/e2e/test_security_limits.py shows it on the server.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.fakes import FakeClock
from tidings.app.container import Container
from tidings.app.settings import Settings, limits_from
from tidings.core.errors import InvalidCredentials, RateLimited, TidingsError
from tidings.core.models import OrgRole
from tidings.services.context import SecurityLimits
from tidings.services.hub import Services
from tidings.services.login_guard import delay_after

# Settings of this module's `container` (tests/conftest.py): lock sooner, wait less.
GUARD_SETTINGS: dict[str, object] = {
    "login_failures_before_delay": 3,
    "login_failures_before_lockout": 6,
    "login_address_failures_before_lockout": 10,
    "login_lockout_seconds": 15 * 60,
    "login_failure_window_seconds": 15 * 60,
    "login_max_delay_seconds": 4,
    "rate_login_per_user": 0,
    "rate_login_per_address": 0,
}
LIMITS = limits_from(Settings.model_validate(GUARD_SETTINGS), SecurityLimits)


START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def container_settings() -> dict[str, object]:
    return GUARD_SETTINGS


@pytest.fixture
def container_clock() -> FakeClock:
    return FakeClock(START)


def _services(container: Container) -> Services:
    """A fresh set of services on the container's deps (the clock the test moves)."""
    assert container.deps.security == LIMITS
    return Services.build(container.deps, container.passwords)


async def _try(svc: Services, name: str, password: str, address: str) -> str:
    try:
        await svc.auth.login(name, password, address=address)
    except RateLimited as exc:
        return f"wait {exc.retry_after:g}"
    except TidingsError as exc:
        return exc.code.value
    return "ok"


def test_delay_schedule() -> None:
    assert [delay_after(n, LIMITS).total_seconds() for n in range(1, 8)] == [
        0,
        0,
        1,
        2,
        4,
        4,
        4,
    ]


async def test_slow_down_lock_and_release(
    container: Container, container_clock: FakeClock
) -> None:
    clock = container_clock
    svc = _services(container)
    await svc.users.create(None, "nina", "plum-orbit-123", role=OrgRole.MEMBER)

    async def sequence(name: str, address: str) -> list[str]:
        seen = []
        for _ in range(8):
            seen.append(await _try(svc, name, "wrong-password", address))
            clock.advance(0.5)
        return seen

    real = await sequence("nina", "192.0.2.1")
    clock.advance(3600)
    ghost = await sequence("no-such-name", "192.0.2.2")
    assert real == ghost
    # 3 failures, then each try waits 1, 2, 4 s after the last failure (at least 1 s said)
    assert real[:4] == ["invalid_credentials"] * 3 + ["wait 1"]  # 0.5 s, said as 1
    # locked after 6 failures: even the right password waits the lockout out
    clock.advance(3600)
    svc2 = _services(container)  # new services: what they know is in the database
    for _ in range(6):
        await _try(svc2, "nina", "wrong-password", "192.0.2.3")
        clock.advance(10)
    assert await _try(svc2, "nina", "plum-orbit-123", "192.0.2.4") == "wait 890"
    clock.advance(889)
    assert await _try(svc2, "nina", "plum-orbit-123", "192.0.2.4") == "wait 1"
    clock.advance(1)
    assert await _try(svc2, "nina", "plum-orbit-123", "192.0.2.4") == "ok"
    # forgotten after a success: three more failures before any wait
    for _ in range(3):
        assert await _try(svc2, "nina", "wrong-password", "192.0.2.5") == "invalid_credentials"


async def test_an_address_guessing_names_is_locked(
    container: Container, container_clock: FakeClock
) -> None:
    clock = container_clock
    svc = _services(container)
    await svc.users.create(None, "omar", "plum-orbit-123", role=OrgRole.MEMBER)
    for i in range(10):
        with pytest.raises(InvalidCredentials):
            await svc.auth.login(f"name{i}", "guess-guess", address="198.51.100.1")
        clock.advance(1)
    assert await _try(svc, "omar", "plum-orbit-123", "198.51.100.1") == "wait 899"
    assert await _try(svc, "omar", "plum-orbit-123", "198.51.100.2") == "ok"


async def test_failures_are_forgotten_after_the_window(
    container: Container, container_clock: FakeClock
) -> None:
    clock = container_clock
    svc = _services(container)
    await svc.users.create(None, "pia", "plum-orbit-123", role=OrgRole.MEMBER)
    for _ in range(3):
        assert await _try(svc, "pia", "wrong-password", "192.0.2.9") == "invalid_credentials"
    assert (await _try(svc, "pia", "wrong-password", "192.0.2.9")).startswith("wait")
    clock.advance(16 * 60)
    for _ in range(3):
        assert await _try(svc, "pia", "wrong-password", "192.0.2.9") == "invalid_credentials"
