"""What names may contain (core/rules.py): usernames are NFKC-normalized ASCII; display
names, conversation names and topics and department names refuse control, invisible and
direction-changing characters (with `details.characters`), and keep every script, emoji
and their joiners. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.helpers import Api, login

# (name, the characters refused in it)
BAD = [
    ("\u202eevil", ["U+202E"]),  # RIGHT-TO-LEFT OVERRIDE
    ("ad\u200bmin", ["U+200B"]),  # ZERO WIDTH SPACE
    ("a\u2066b\u2069", ["U+2066", "U+2069"]),  # LEFT-TO-RIGHT ISOLATE, POP
    ("Ann\u200f", ["U+200F"]),  # RIGHT-TO-LEFT MARK
    ("\ufeffBen", ["U+FEFF"]),  # BYTE ORDER MARK
    ("soft\u00adhyphen", ["U+00AD"]),
    ("two\u2028lines", ["U+2028"]),  # LINE SEPARATOR
    ("bell\x07", ["U+0007"]),
    ("\u200dalone", ["U+200D"]),  # a joiner joining nothing
    ("tag\U000e0041", ["U+E0041"]),  # a tag outside an emoji tag sequence
]
GOOD = [
    "王小明",
    "Zoë Ångström",
    "👩\u200d💻 Dev",  # woman technologist: a ZWJ sequence
    "👨\u200d👩\u200d👧",  # family
    "می\u200cخواهم",  # Persian with ZERO WIDTH NON-JOINER
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scots",  # flag
    "שרה כהן",  # right-to-left letters are fine: only controls are refused
    "1\ufe0f\u20e3 👍🏽",
]


def refused(answer: dict[str, Any], field: str, characters: list[str]) -> bool:
    error = answer["error"]
    return bool(
        error["code"] == "invalid_request"
        and error["details"] == {"field": field, "characters": characters}
        and all(c in error["message"] for c in characters)
    )


async def test_display_names_refuse_invisible_and_direction_characters(world: World) -> None:
    admin = await world.admin()
    for i, (name, chars) in enumerate(BAD):
        body = {"username": f"bad{i}", "password": "plum-orbit-123", "display_name": name}
        answer = await admin.post("/users", body, expect=400)
        assert refused(answer, "display_name", chars), (name, answer)
    created = []
    for i, name in enumerate(GOOD):
        body = {"username": f"good{i}", "password": "plum-orbit-123", "display_name": name}
        user = (await admin.post("/users", body, expect=201))["user"]
        assert user["display_name"] == name
        created.append(user)
    # changing a display name is checked the same way
    uid = created[0]["id"]
    answer = await admin.call(
        "PATCH", f"/users/{uid}", json={"display_name": "\u202eevil"}, expect=400
    )
    assert refused(answer, "display_name", ["U+202E"])
    # and a bot's
    answer = await admin.post("/bots", {"username": "b0t", "display_name": "x\u200by"}, expect=400)
    assert refused(answer, "display_name", ["U+200B"])


async def test_conversation_and_department_names_refuse_them_too(world: World) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    for kind in ("group", "channel"):
        body = {"kind": kind, "name": "pay\u202etxt.exe", "member_ids": [ben.id]}
        assert refused(await ann.post("/conversations", body, expect=400), "name", ["U+202E"])
    cid = await world.conversation(ann, ben, name="👩\u200d💻 team 团队")
    conv = await ann.get(f"/conversations/{cid}")
    assert conv["conversation"]["name"] == "👩\u200d💻 team 团队"
    for field, value, chars in (
        ("name", "x\u2067y", ["U+2067"]),
        ("topic", "t\u200bt", ["U+200B"]),
    ):
        answer = await ann.call("PATCH", f"/conversations/{cid}", json={field: value}, expect=400)
        assert refused(answer, field, chars)
    answer = await admin.post("/departments", {"name": "R\u202eD"}, expect=400)
    assert refused(answer, "name", ["U+202E"])


@pytest.mark.parametrize(
    "username",
    ["ali\u202ece", "a\u200bb", "\u0430dmin", "王小明", "ann\u200d", "bob\u2066", "x\ny"],
)
async def test_usernames_are_ascii_after_nfkc(world: World, username: str) -> None:
    """Cyrillic а, any other script, invisible and direction characters: refused."""
    admin = await world.admin()
    body = {"username": username, "password": "plum-orbit-123"}
    answer = await admin.post("/users", body, expect=400)
    assert answer["error"]["details"]["field"] == "username"


async def test_full_width_usernames_are_their_ascii_form(world: World) -> None:
    admin = await world.admin()
    body = {"username": "ｋａｔｅ", "password": "plum-orbit-123"}
    user = (await admin.post("/users", body, expect=201))["user"]
    assert user["username"] == "kate"
    # typed full-width at login (an input method left on), it is the same account
    kate: Api = await login(world.server.url, "ＫＡＴＥ", "plum-orbit-123")
    assert kate.id == user["id"]
    await kate.close()
