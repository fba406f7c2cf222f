"""docs/protocol.md, shared/PROTOCOL.md and the generated OpenAPI name the same REST
operations: the contract and the code cannot drift apart unnoticed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
    )
    spec = create_app(container.services, gateway, max_request_bytes=1 << 20).openapi()
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


def test_every_fixed_name_of_the_contract_is_served() -> None:
    shared = ROOT.parent / "shared" / "PROTOCOL.md"
    if not shared.exists():
        pytest.skip("shared/PROTOCOL.md is not beside this checkout")
    fixed = documented(shared.read_text())
    # Written in shorthand there: `DELETE …/{seq}` and `PUT` / `DELETE …/reactions/{emoji}`.
    fixed |= {
        ("DELETE", "/conversations/{}/messages/{}"),
        ("PUT", "/conversations/{}/messages/{}/reactions/{}"),
    }
    assert fixed <= openapi_operations()
