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
                     "tidings.store.sql.store", "tidings.cli.main", "tidings.cli.common",
                     "tidings.sdk.client"):
        assert expected in GRAPH
    assert "tidings.core.errors" in GRAPH["tidings.core.rules"]
    assert "tidings.store.sql.store" in GRAPH["tidings.app.container"]
    # imports inside functions count
    assert "tidings.app.container" in GRAPH["tidings.cli.common"]


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


ADAPTERS = {
    "tidings.store.sql": "tidings.store",
    "tidings.bus.local": "tidings.bus",
    "tidings.outbound.http": "tidings.outbound",
    "tidings.blobs.local": "tidings.blobs",
    "tidings.search.fts5": "tidings.search",
    "tidings.search.postgres": "tidings.search",
}


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


# --- no import cycles -------------------------------------------------------------------
# Every import counts: at module level, inside functions, and under TYPE_CHECKING (a
# cycle hidden there is still two modules that cannot be understood one without the
# other). `import a.b.c` also runs the packages a and a.b; a module's own packages are
# already being imported when it runs, so an edge to them is no cycle unless the module
# takes a name from one (`from tidings.bench import SCENARIOS` inside tidings.bench.x).


def module_edges(source: str, module: str, known: set[str], *, is_package: bool = False
                 ) -> set[str]:
    """The project modules that importing `module` makes Python import."""
    package = module if is_package else module.rpartition(".")[0]
    ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    targets: set[tuple[str, bool]] = set()  # (module, whether names are taken from it)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update((alias.name, False) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                targets.add((submodule, False) if submodule in known else (target, True))
    edges: set[str] = set()
    for target, takes_names in targets:
        parts = target.split(".")
        for name in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if name not in known or name == module:
                continue
            if name not in ancestors or (name == target and takes_names):
                edges.add(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted,
    plus any module that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def project_edges() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}
    known = set(paths)
    return {
        name: module_edges(path.read_text(encoding="utf-8"), name, known,
                           is_package=path.name == "__init__.py")
        for name, path in paths.items()
    }


def test_no_import_cycles() -> None:
    edges = project_edges()
    assert "tidings.services.auth" in edges["tidings.services.users"]
    assert "tidings.bench.runner" in edges["tidings.bench"]
    assert cycles(edges) == []


def test_the_cycle_finder_finds_cycles() -> None:
    known = {"tidings.services", "tidings.services.auth", "tidings.services.second_factor",
             "tidings.bench", "tidings.bench.runner", "tidings.bench.procstat"}
    auth = module_edges(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from tidings.services.second_factor import SecondFactorService\n",
        "tidings.services.auth", known,
    )
    second = module_edges(
        "def later():\n    from .auth import verify_password\n",
        "tidings.services.second_factor", known,
    )
    assert cycles({"tidings.services.auth": auth, "tidings.services.second_factor": second}) == [
        ["tidings.services.auth", "tidings.services.second_factor"]
    ]
    # a package's module taking a submodule of its own package is no cycle ...
    package = module_edges("from tidings.bench.runner import run\n", "tidings.bench", known,
                           is_package=True)
    runner = module_edges("from tidings.bench import procstat\n", "tidings.bench.runner", known)
    assert runner == {"tidings.bench.procstat"}
    assert cycles({"tidings.bench": package, "tidings.bench.runner": runner}) == []
    # ... but taking a name the package defines is one
    runner = module_edges("from tidings.bench import run\n", "tidings.bench.runner", known)
    assert cycles({"tidings.bench": package, "tidings.bench.runner": runner}) == [
        ["tidings.bench", "tidings.bench.runner"]
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_plugins_are_apart_from_the_server() -> None:
    """A plugin sees only the plugin API (tidings/plugins/api.py); the server reaches the
    plugins only through that API (the shipped ones are loaded by app/ from entry points)."""
    assert violations(
        "tidings.plugins", lambda n: not within(n, "tidings") or within(n, "tidings.plugins")
    ) == []
    assert violations(
        "tidings.plugins.api", lambda n: not within(n, "tidings")
    ) == []
    for layer in ("tidings.core", "tidings.protocol", "tidings.services", "tidings.api",
                  "tidings.gateway", "tidings.store"):
        assert violations(
            layer,
            lambda n: not within(n, "tidings.plugins") or within(n, "tidings.plugins.api"),
        ) == []


def test_admin_commands_start_without_the_scim_models() -> None:
    """The services and the CLI load SCIM's models only when SCIM is used: importing them
    (scim2_models builds its pydantic models at import) was a third of the start-up of
    every `tidings` command."""
    import subprocess
    import sys

    probe = (
        "import sys, tidings.app.container, tidings.cli.main; "
        "print(sorted(m for m in sys.modules"
        " if m.startswith(('scim2_models', 'tidings.protocol.scim'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_server_starts_without_the_scim_models_and_nothing_half_loads_them() -> None:
    """The SCIM routes import their wire module at its first use. What stands for it is
    not in sys.modules: a module there whose code runs on first touch (LazyLoader) was
    run by whatever walked sys.modules, such as inspect.getmodule during a pydantic
    class's creation in another import, and that import failed half-way."""
    import subprocess
    import sys

    probe = (
        "import sys, inspect, tidings.api.scim_routes as r; "
        "[inspect.getmodule(inspect) for _ in range(2)]; "
        "[hasattr(m, '__file__') for m in list(sys.modules.values())]; "
        "print(sorted(m for m in sys.modules"
        " if m.startswith(('scim2_models', 'tidings.protocol.scim')))); "
        "print(r.wire.USER_SCHEMA)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1] == "urn:ietf:params:scim:schemas:core:2.0:User"  # imported at first use
