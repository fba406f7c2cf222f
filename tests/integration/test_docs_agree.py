"""docs/protocol.md, the fixed names of the client protocol v1 and the generated OpenAPI
name the same REST operations: the contract and the code cannot drift apart unnoticed.

The fixed names (the REST table of the contract, `PROTOCOL.md`, kept beside the checkout
in `../shared/` where this project is developed) are copied here, so that the check runs
in a plain clone; where that file is present, the copy must say what it says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OP = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`]+)")


def normalize(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.split("?")[0])


def openapi_operations() -> set[tuple[str, str]]:
    from tidings.api.app import create_app
    from tidings.app.container import Container
    from tidings.app.settings import Settings
    from tidings.gateway.hub import Hub
    from tidings.gateway.ws import Gateway

    container = Container(Settings(data_dir=Path("/nonexistent")))
    gateway = Gateway(
        container.services,
        Hub(container.bus),
        max_frame_bytes=65536,
        auth_timeout=10,
        queue_limit=100,
        max_per_user=100,
        max_per_address=1000,
        trusted_proxies={"127.0.0.1"},
    )
    spec = create_app(
        container.services, gateway, max_request_bytes=1 << 20, body_timeout=30, hsts_max_age=0
    ).openapi()
    ops = set()
    for path, methods in spec["paths"].items():
        for method in methods:
            ops.add((method.upper(), normalize(path.removeprefix("/api/v1"))))
    return ops


def documented(text: str) -> set[tuple[str, str]]:
    return {(m, normalize(p)) for m, p in OP.findall(text)}


def test_protocol_doc_and_openapi_name_the_same_operations() -> None:
    ops = openapi_operations()
    doc = documented((ROOT / "docs" / "protocol.md").read_text())
    assert doc == ops


# The REST table of the client protocol v1, as PROTOCOL.md writes it (its shorthand
# `DELETE …/{seq}` and `PUT` / `DELETE …/reactions/{emoji}` written out).
FIXED_V1 = """
POST /auth/login
POST /auth/logout
GET /users/me
POST /users
GET /users?query=
POST /conversations
GET /conversations
GET /conversations/{cid}
POST /conversations/{cid}/members
DELETE /conversations/{cid}/members/{uid}
POST /conversations/{cid}/messages
GET /conversations/{cid}/messages?before_seq=&after_seq=&limit=
PATCH /conversations/{cid}/messages/{seq}
DELETE /conversations/{cid}/messages/{seq}
PUT /conversations/{cid}/messages/{seq}/reactions/{emoji}
DELETE /conversations/{cid}/messages/{seq}/reactions/{emoji}
POST /conversations/{cid}/read
GET /sync?since=<position>&limit=
"""
SHORTHAND = {
    ("DELETE", "/conversations/{}/messages/{}"),
    ("PUT", "/conversations/{}/messages/{}/reactions/{}"),
}
SHARED = ROOT.parent / "shared" / "PROTOCOL.md"


def test_every_fixed_name_of_the_contract_is_served() -> None:
    """The copy above is served and documented. Where the contract's own file is beside
    the checkout, its REST table of v1 (the section up to the next heading) is the copy;
    its later sections name features still to be built, not served yet."""
    fixed = documented(FIXED_V1)
    if SHARED.exists():
        text = SHARED.read_text()
        start = text.index("## REST")
        rest_v1 = text[start : text.index("\n## ", start)]
        assert documented(rest_v1) | SHORTHAND == fixed
    assert len(fixed) == 18
    assert fixed <= openapi_operations()
    assert fixed <= documented((ROOT / "docs" / "protocol.md").read_text())
