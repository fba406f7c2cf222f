"""The SDK's notification settings and Web Push subscriptions (issue 17): the typed
models, the refusals as typed errors, and a push really delivered to a subscription
made through the SDK (a loopback push endpoint that decrypts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppServer, MakeServer
from tests.integration.sdk.conftest import SdkUsers
from tests.push_receiver import PushEndpoint
from tests.webhook_receiver import settle
from tidings.sdk import InvalidRequest, OfflineNotifications


@pytest.fixture
async def server(make_server: MakeServer) -> AsyncIterator[AppServer]:
    async with make_server(webhook_allowed_networks="127.0.0.0/8") as s:
        yield s


async def test_offline_notifications_and_push_through_the_sdk(
    server: AppServer, sdk_users: SdkUsers
) -> None:
    (_, a), (b_u, b) = await sdk_users("a", "b")
    async with PushEndpoint() as endpoint:
        mine = await b.offline_notifications()
        assert mine == OfflineNotifications(
            email_digests=True,
            previews=True,
            email=None,
            email_available=False,
            push_available=True,
        )
        changed = await b.update_offline_notifications(previews=False, email="b@example.org")
        assert (changed.previews, changed.email, changed.email_digests) == (
            False,
            "b@example.org",
            True,
        )
        with pytest.raises(InvalidRequest):
            await b.update_offline_notifications(email="nope")
        key = await b.vapid_public_key()
        sub = endpoint.subscription()
        made = await b.subscribe_push(sub["endpoint"], **sub["keys"])
        assert made.this_device and made.endpoint == endpoint.url
        assert [s.id for s in await b.push_subscriptions()] == [made.id]
        with pytest.raises(InvalidRequest):
            await b.subscribe_push(sub["endpoint"], "AAAA", sub["keys"]["auth"])
        room = await a.create_conversation("direct", [b_u.id])
        sent = await a.send(room.id, "private words")
        await settle(server.container.services.jobs)
        assert endpoint.failures == [] and len(endpoint.pushes) == 1
        assert endpoint.pushes[0].vapid_key == key
        data = endpoint.pushes[0].json()
        assert data["seq"] == sent.seq and "preview" not in data  # previews off
        await b.unsubscribe_push(endpoint.url)
        await b.unsubscribe_push(endpoint.url)  # again: no error
        assert await b.push_subscriptions() == []
