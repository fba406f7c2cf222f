"""Imports point one way (ARCHITECTURE.md, STYLE.md section 1). Checked on the source with
ast, so that lazy imports inside functions count too."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "tidings"
IGNORED = ("tidings.bench", "tidings.web")  # other engineers' areas


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module a source file imports (absolute names; relative ones resolved)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.add(target)
            # `from tidings.store import sql` imports tidings.store.sql
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def all_modules() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PKG.rglob("*.py")):
        name = module_name(path)
        if name.startswith(IGNORED):
            continue
        graph[name] = imports_of(
            path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"
        )
    return graph


GRAPH = all_modules()


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(layer: str, allowed: Callable[[str], bool]) -> list[str]:
    """`allowed(imported_name) -> bool` for every import of every module in `layer`."""
    bad = []
    for module, imported in GRAPH.items():
        if within(module, layer):
            bad += [f"{module} imports {name}" for name in sorted(imported)
                    if not allowed(name)]
    return bad


def test_the_walk_sees_the_whole_package() -> None:
    for expected in ("tidings.core.rules", "tidings.protocol.frames", "tidings.services.messages",
                     "tidings.gateway.hub", "tidings.api.routes", "tidings.app.container",
                     "tidings.store.sql.store", "tidings.cli.main", "tidings.sdk.client"):
        assert expected in GRAPH
    assert "tidings.core.errors" in GRAPH["tidings.core.rules"]
    assert "tidings.store.sql.store" in GRAPH["tidings.app.container"]
    # imports inside functions count
    assert "tidings.app.container" in GRAPH["tidings.cli.main"]


def test_the_checker_catches_violations() -> None:
    source = (
        "import sqlalchemy\n"
        "from . import wire\n"
        "from ..store.sql import store\n"
        "def later():\n"
        "    from tidings.app import container\n"
    )
    found = imports_of(source, "tidings.protocol.frames")
    assert {"sqlalchemy", "tidings.protocol.wire", "tidings.store.sql.store",
            "tidings.app.container"} <= found


def test_core_imports_nothing_of_tidings_but_core() -> None:
    assert violations(
        "tidings.core", lambda n: not within(n, "tidings") or within(n, "tidings.core")
    ) == []


def test_protocol_imports_only_core_and_protocol() -> None:
    assert violations(
        "tidings.protocol",
        lambda n: not within(n, "tidings") or within(n, "tidings.core", "tidings.protocol"),
    ) == []


FORBIDDEN_IN_SERVICES = (
    "tidings.api", "tidings.gateway", "tidings.app", "tidings.cli",
    "sqlalchemy", "starlette", "fastapi", "uvicorn", "websockets",
)


def test_services_touch_no_transport_wiring_or_sql() -> None:
    assert violations(
        "tidings.services", lambda n: not within(n, *FORBIDDEN_IN_SERVICES)
    ) == []
    assert violations(
        "tidings.services", lambda n: not within(n, "tidings.store.sql", "tidings.bus.local")
    ) == []


@pytest.mark.parametrize("layer", ["tidings.api", "tidings.gateway"])
def test_transports_never_touch_sql(layer: str) -> None:
    assert violations(layer, lambda n: not within(n, "sqlalchemy", "tidings.store.sql")) == []


ADAPTERS = {"tidings.store.sql": "tidings.store", "tidings.bus.local": "tidings.bus"}


def may_import_adapter(module: str, adapter: str) -> bool:
    """app/, cli/ and the migrations wire adapters; an adapter may use its own modules
    and sibling adapters of the same port (bus.redis shares bus.local's presence
    helper), never the port itself."""
    if within(module, "tidings.app", "tidings.cli", "tidings.store.migrations"):
        return True
    port_package = ADAPTERS[adapter]
    return within(module, port_package) and module not in (
        port_package, f"{port_package}.ports"
    )


def test_only_app_cli_and_migrations_pick_adapters() -> None:
    bad = [
        f"{module} imports {name}"
        for module, imported in GRAPH.items()
        for name in sorted(imported)
        for adapter in ADAPTERS
        if within(name, adapter) and not may_import_adapter(module, adapter)
    ]
    assert bad == []
    assert not may_import_adapter("tidings.services.messages", "tidings.store.sql")
    assert not may_import_adapter("tidings.gateway.hub", "tidings.bus.local")
    assert not may_import_adapter("tidings.bus.ports", "tidings.bus.local")


def test_sdk_stays_a_client() -> None:
    assert violations(
        "tidings.sdk",
        lambda n: not within(n, "tidings.services", "tidings.store", "tidings.api",
                             "tidings.gateway", "tidings.app"),
    ) == []
