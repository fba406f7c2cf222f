"""Who sees whose presence (core/rules.py `sees_everyones_presence`): members see anyone's,
as they see the directory; a guest sees only the people it shares a direct or group
conversation with, over `GET /presence` and in live `presence` frames alike. SQLite and
PostgreSQL + Redis."""

from __future__ import annotations

import asyncio

from tests.conftest import World
from tests.helpers import Api


async def presence_of(api: Api, *users: Api) -> dict[str, str]:
    answer = await api.get("/presence", params={"user_ids": ",".join(u.id for u in users)})
    return dict(answer["presence"])


async def wait_online(api: Api, user: Api) -> None:
    async with asyncio.timeout(10):
        while True:
            if (await presence_of(api, user))[user.id] == "online":
                return
            await asyncio.sleep(0.05)


async def test_a_guest_sees_only_its_contacts_presence(world: World) -> None:
    admin = await world.admin()
    guest = await world.user("gus", role="guest")
    friend, stranger, member = await world.users("fay", "sam", "mel")
    await world.conversation(friend, guest)  # a group of fay and gus
    await world.conversation(stranger, member)  # sam shares nothing with gus
    # a channel shares no presence
    await admin.post(
        "/conversations",
        {"kind": "channel", "name": "all", "member_ids": [guest.id, stranger.id]},
        expect=201,
    )
    guest_ws = await world.ws(guest)
    sockets = {api.id: await world.ws(api) for api in (friend, stranger)}
    for api in (friend, stranger):
        await wait_online(admin, api)

    # REST: a member sees both online; the guest sees its contact, and itself
    assert await presence_of(member, friend, stranger) == {
        friend.id: "online",
        stranger.id: "online",
    }
    assert await presence_of(guest, friend, stranger, guest) == {
        friend.id: "online",
        stranger.id: "offline",
        guest.id: "online",
    }
    # as for an id that does not exist: nothing tells them apart
    ghost = (await guest.get("/presence", params={"user_ids": "no-such-user"}))["presence"]
    assert ghost == {"no-such-user": "offline"}

    # live: the stranger goes away first, then the friend; the guest hears only the friend
    await sockets[stranger.id].request({"type": "presence", "state": "away"})
    await sockets[friend.id].request({"type": "presence", "state": "away"})
    heard = []
    async with asyncio.timeout(10):
        while (friend.id, "away") not in heard:
            frame = await guest_ws.recv_type("presence")
            heard.append((frame["user_id"], frame["state"]))
    assert {uid for uid, _ in heard} == {friend.id}, heard
