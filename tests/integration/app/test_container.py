"""What the container builds from the settings, with nothing patched afterwards: the
password hasher at the settings' cost, and the services' limits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from argon2 import extract_parameters

from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.services.passwords import Passwords


async def test_the_hasher_and_the_limits_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        argon2_time_cost=2,
        argon2_memory_kib=2048,
        edit_window_seconds=42,
        login_lockout_seconds=77,
        totp_issuer="Acme",
    )
    container = Container(settings)
    try:
        svc = container.services
        hashed = await container.passwords.hash("a password")
        params = extract_parameters(hashed)
        assert (params.time_cost, params.memory_cost) == (2, 2048)
        assert await container.passwords.verify(hashed, "a password")
        assert not await container.passwords.verify(hashed, "another one")
        # one hasher, handed to every service that hashes or checks passwords
        for service in (svc.auth, svc.users, svc.sessions, svc.second_factor):
            assert service.passwords is container.passwords
        assert svc.auth.second_factor is svc.second_factor
        assert container.deps.limits.edit_window == timedelta(seconds=42)
        assert container.deps.security.login_lockout == timedelta(seconds=77)
        assert container.deps.security.totp_issuer == "Acme"
    finally:
        await container.close()


async def test_a_test_may_hand_in_a_cheaper_hasher(tmp_path: Path) -> None:
    cheap = Passwords(time_cost=1, memory_kib=8, parallelism=1)
    container = Container(Settings(data_dir=tmp_path), passwords=cheap)
    try:
        assert container.passwords is cheap
        assert container.services.auth.passwords is cheap
        params = extract_parameters(await cheap.hash("pw"))
        assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 8, 1)
        # a stored hash keeps its own cost: a hasher of another cost still checks it
        assert await Passwords(time_cost=2, memory_kib=1024).verify(await cheap.hash("pw"), "pw")
    finally:
        await container.close()
