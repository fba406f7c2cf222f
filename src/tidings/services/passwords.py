"""Password hashing: argon2id, with the cost the settings choose. One `Passwords` is
built by the container (app/container.py, from argon2_time_cost and argon2_memory_kib)
and handed to the services that hash or check passwords: auth, users, sessions and the
second factor. Stored hashes keep the parameters they were made with, so changing the
cost affects new hashes only."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_DUMMY_PASSWORD = "not a real password, used to equalize timing"


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int | None = None) -> None:
        """`parallelism` None is the library's default (what the server uses)."""
        if parallelism is None:
            self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        else:
            self._hasher = PasswordHasher(
                time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
            )
        # made now, so that even the first login of an unknown name takes one check
        self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    async def waste_time(self, password: str) -> None:
        """The work of one check, for a login that has no hash to check against (an
        unknown user, a bot): its answer comes after the same time as a wrong password."""
        await self.verify(self._dummy_hash, password)
