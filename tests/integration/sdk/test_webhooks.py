"""The SDK's webhook methods against the application in-process, and its receiver-side
check (`verify_webhook`) on a real delivery."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppServer, MakeServer
from tests.webhook_receiver import Receiver, settle
from tidings.sdk import Client, InvalidRequest, NotFound, sign_webhook, verify_webhook


@pytest.fixture
async def server(make_server: MakeServer) -> AsyncIterator[AppServer]:
    async with make_server(webhook_allowed_networks="127.0.0.0/8") as s:
        yield s


async def test_the_sdk_manages_webhooks_and_verifies_a_delivery(server: AppServer) -> None:
    async with Client(server.url) as admin, Receiver() as receiver:
        await admin.login(server.admin_username, server.admin_password)
        hook, secret = await admin.create_webhook(receiver.url, ["message", "reaction"])
        assert hook.enabled and hook.events == ("message", "reaction") and secret
        assert [w.id for w in await admin.webhooks()] == [hook.id]
        delivery = await admin.test_webhook(hook.id)
        await settle(server.container.services.jobs)
        got = receiver.received[0]
        assert got.headers["x-tidings-delivery"] == delivery
        stamp, signed = got.headers["x-tidings-timestamp"], got.headers["x-tidings-signature"]
        assert verify_webhook(secret, stamp, got.body, signed)
        assert not verify_webhook(secret, stamp, got.body + b" ", signed)
        assert not verify_webhook("whsec_other", stamp, got.body, signed)
        assert not verify_webhook(secret, stamp, got.body, signed, now=time.time() + 3600)
        assert not verify_webhook(secret, "yesterday", got.body, signed)
        assert sign_webhook(secret, stamp, got.body) == signed
        rows, following = await admin.webhook_deliveries(hook.id)
        assert [(r.kind, r.status, r.response_code) for r in rows] == [("ping", "ok", 200)]
        assert rows[0].delivery_id == delivery and following is None
        off = await admin.update_webhook(hook.id, enabled=False, events=["message"])
        assert (off.enabled, off.disabled_reason, off.events) == (False, "manual", ("message",))
        _, rotated = await admin.rotate_webhook_secret(hook.id)
        assert rotated != secret
        with pytest.raises(InvalidRequest):
            await admin.update_webhook(hook.id, url="ftp://example.com/")
        await admin.delete_webhook(hook.id)
        with pytest.raises(NotFound):
            await admin.webhook(hook.id)
