"""Password hashing: argon2id, with the cost the settings choose. One `Passwords` is
built by the container (app/container.py, from argon2_time_cost and argon2_memory_kib)
and handed to the services that hash or check passwords: auth, users, sessions and the
second factor. Stored hashes keep the parameters they were made with, so changing the
cost affects new hashes only.

One-time codes (the second factor's recovery codes) are hashed with the same argon2id
cost, one random salt per batch: checking a code against a user's unspent codes then
costs one hash, not one per code, and the check stays an equality the store spends
atomically."""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
from collections.abc import Sequence

from argon2 import PasswordHasher, Type, extract_parameters, low_level
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

    async def hash_codes(self, codes: Sequence[str]) -> list[str]:
        """Encoded argon2id hashes of `codes`, one fresh salt for them all."""
        hasher = self._hasher
        salt = os.urandom(hasher.salt_len)

        def make() -> list[str]:
            return [
                _encoded(
                    code,
                    salt,
                    hasher.time_cost,
                    hasher.memory_cost,
                    hasher.parallelism,
                    hasher.hash_len,
                )
                for code in codes
            ]

        return await asyncio.to_thread(make)

    async def matching_code(self, code: str, stored: Sequence[str]) -> str | None:
        """The one of `stored` (encoded argon2id hashes made by `hash_codes`) that is the
        hash of `code`, or None: one hash per distinct salt and cost among them."""
        batches: dict[str, list[str]] = {}
        for encoded in stored:
            if encoded.startswith("$argon2id$"):
                batches.setdefault(encoded.rsplit("$", 1)[0], []).append(encoded)

        def find() -> str | None:
            for prefix, members in batches.items():
                try:
                    p = extract_parameters(members[0])
                    salt_b64 = prefix.rsplit("$", 1)[1]
                    salt = base64.b64decode(salt_b64 + "=" * (-len(salt_b64) % 4))
                except (InvalidHashError, ValueError):
                    continue
                mine = _encoded(code, salt, p.time_cost, p.memory_cost, p.parallelism, p.hash_len)
                for encoded in members:
                    if hmac.compare_digest(mine, encoded):
                        return encoded
            return None

        return await asyncio.to_thread(find) if batches else None


def _encoded(
    code: str, salt: bytes, time_cost: int, memory_cost: int, parallelism: int, hash_len: int
) -> str:
    return low_level.hash_secret(
        code.encode(), salt, time_cost, memory_cost, parallelism, hash_len, Type.ID
    ).decode("ascii")
