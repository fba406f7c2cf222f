"""The Store port (store/ports.py) and its SQL adapter agree: every Protocol method is
implemented by the aggregate's module with the same parameters, annotations and
async-ness, and each module offers nothing public beyond its Protocol. And only
store/sql/engines/ knows one SQL engine from another."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from tidings.store import ports
from tidings.store.sql import (
    conversations,
    events,
    files,
    identity,
    integrations,
    jobs,
    messages,
    notifications,
    oidc,
    scim,
    security,
    store,
    threads,
    tx,
    users,
    webhooks,
)

SRC = Path(__file__).resolve().parents[3] / "src" / "tidings"

# Each aggregate's Protocol, and the class that implements it.
AGGREGATES: list[tuple[type[Any], type[Any]]] = [
    (ports.UsersTx, users.UserQueries),
    (ports.ConversationsTx, conversations.ConversationQueries),
    (ports.MessagesTx, messages.MessageQueries),
    (ports.ThreadsTx, threads.ThreadQueries),
    (ports.EventsTx, events.EventQueries),
    (ports.SecurityTx, security.SecurityQueries),
    (ports.JobsTx, jobs.JobQueries),
    (ports.IdentityTx, identity.IdentityQueries),
    (ports.OidcTx, oidc.OidcQueries),
    (ports.IntegrationsTx, integrations.IntegrationQueries),
    (ports.ScimTx, scim.ScimQueries),
    (ports.WebhooksTx, webhooks.WebhookQueries),
    (ports.FilesTx, files.FileQueries),
    (ports.NotificationsTx, notifications.NotificationQueries),
]


def _own_methods(cls: type[Any]) -> dict[str, Any]:
    """The public methods a class defines itself (not inherited)."""
    return {
        name: value
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


def _protocol_methods(protocol: type[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        found.update(_own_methods(klass))
    return found


def _shape(function: Any) -> tuple[bool, list[tuple[str, str, str, str]], str]:
    """Async-ness, each parameter (name, kind, default, annotation) and the return
    annotation, as written (annotations are strings: `from __future__ import annotations`)."""
    signature = inspect.signature(function)

    def text(annotation: object) -> str:
        return re.sub(r"\s+", " ", str(annotation))

    params = [
        (p.name, p.kind.name, repr(p.default), text(p.annotation))
        for p in signature.parameters.values()
    ]
    return inspect.iscoroutinefunction(function), params, text(signature.return_annotation)


@pytest.mark.parametrize(("protocol", "implementation"), AGGREGATES, ids=lambda c: c.__name__)
def test_each_aggregate_module_implements_its_protocol_exactly(
    protocol: type[Any], implementation: type[Any]
) -> None:
    wanted = _protocol_methods(protocol)
    offered = _own_methods(implementation)
    assert wanted, protocol
    assert sorted(offered) == sorted(wanted), "public methods differ from the Protocol"
    for name, method in wanted.items():
        assert _shape(offered[name]) == _shape(method), name


def test_the_sql_transaction_implements_tx() -> None:
    wanted = _protocol_methods(ports.Tx)
    aggregated = set().union(*(_protocol_methods(p) for p, _ in AGGREGATES))
    # Tx is the aggregates' Protocols and the transaction's own three methods.
    assert set(wanted) - aggregated == {"after_commit", "get_meta", "set_meta"}
    for name, method in wanted.items():
        assert _shape(getattr(store.SqlTx, name)) == _shape(method), name
    assert set(_own_methods(tx.TxBase)) == {"after_commit", "get_meta", "set_meta"}
    assert _own_methods(store.SqlTx) == {}  # composed, nothing of its own


def test_the_sql_store_implements_store() -> None:
    wanted = _protocol_methods(ports.Store)
    for name, method in wanted.items():
        implemented = getattr(store.SqlStore, name)
        # contextmanager-decorated methods: compare the wrapped function's parameters
        params = _shape(inspect.unwrap(implemented))[1]
        assert [p[:3] for p in params] == [p[:3] for p in _shape(method)[1]], name


def test_results_are_frozen_records() -> None:
    for record in (
        ports.Credentials,
        ports.SendTargets,
        ports.MessagePage,
        ports.StreamSnapshot,
        ports.TokenSeen,
        ports.SecondFactor,
        ports.LoginFailures,
        ports.WebhookSecret,
    ):
        params = getattr(record, "__dataclass_params__", None)
        assert params is not None and params.frozen, record
        assert hasattr(record, "__slots__"), record


# Names that only an engine module may use: telling the engines apart, or their drivers.
_ENGINE_AWARE = re.compile(
    r"dialect\.name|\bis_sqlite\b|\bis_postgres\b|\bimport (sqlite3|aiosqlite|asyncpg)\b"
    r"|\bfrom (sqlite3|aiosqlite|asyncpg)\b|startswith\(\s*[\"'](sqlite|postgres)"
)


def test_only_the_engines_know_one_engine_from_another() -> None:
    """store/sql/engines/ holds every difference between SQLite and PostgreSQL. (The
    migration scripts in store/migrations/versions/ are history: each keeps the DDL it
    ran on each engine when it was written.)"""
    engines = SRC / "store" / "sql" / "engines"
    versions = SRC / "store" / "migrations" / "versions"
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(engines) or path.is_relative_to(versions):
            continue
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        for match in _ENGINE_AWARE.finditer(code):
            offenders.append(f"{path.relative_to(SRC)}: {match.group(0)}")
    assert offenders == []
