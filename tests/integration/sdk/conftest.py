"""What the SDK tests share: new users on the test's server, each with an SDK `Client`
signed in as them, and waiting on a stream for one kind of typed event.

    (ann_u, ann), (ben_u, ben) = await sdk_users("ann", "ben")
    tab = await sdk_users.sign_in(ann_u)          # a second client of the same user
    event = await next_of(await ben.subscribe(), MessageSaved)

`sdk_users` uses the test's `server` fixture, so a module that makes its own `server`
(other settings) gets its users there.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppServer
from tidings.sdk import Client, Event, EventStream, User

PASSWORD = "sdk-test-password-1"


async def next_of(stream: EventStream, kind: type[Event]) -> Event:
    """The next event of this kind on the stream (others are passed over); 10 s each."""
    while True:
        event = await stream.next(timeout=10)
        if isinstance(event, kind):
            return event


class SdkUsers:
    """Makes users (as the server's admin) and signs SDK clients in; closes every client."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self._clients: list[Client] = []

    async def __call__(self, *names: str) -> list[tuple[User, Client]]:
        """One new user a name (`sdk<name><random>`, password PASSWORD), each with a
        client signed in as them."""
        async with Client(self.server.url) as admin:
            await admin.login(self.server.admin_username, self.server.admin_password)
            users = [
                await admin.create_user(f"sdk{name}{secrets.token_hex(3)}", PASSWORD)
                for name in names
            ]
        return [(user, await self.sign_in(user)) for user in users]

    async def sign_in(self, user: User) -> Client:
        """Another client signed in as this user (a second tab or device)."""
        client = Client(self.server.url)
        self._clients.append(client)
        await client.login(user.username, PASSWORD)
        return client

    async def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.aclose()


@pytest.fixture
async def sdk_users(server: AppServer) -> AsyncIterator[SdkUsers]:
    made = SdkUsers(server)
    try:
        yield made
    finally:
        await made.close()
