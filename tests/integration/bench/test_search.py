"""`tidings bench search` at a tiny scale, on both backends: the load is what the send
path writes (the members' ranges are checked), some messages are edited and recalled,
the spawned server indexes it all, and every hit of every query is the caller's to see,
never a recalled message, never an edited one by its old text.

The tests that query need the search side of issue 16 (GET /api/v1/search, the
search.index jobs); the load-only ones need nothing more than main."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import PG_URL, REDIS_URL, require
from tidings.bench.search import SearchOptions, run_search

BACKENDS = ["sqlite", "postgres"]
SRC = Path(__file__).resolve().parents[3] / "src"


def options(backend: str, **sizes: Any) -> SearchOptions:
    if backend == "postgres":
        require("PostgreSQL", PG_URL)
        require("Redis", REDIS_URL)
    defaults: dict[str, Any] = {
        "messages": 2_000,
        "conversations": 20,
        "users": 40,
        "queries": 50,
        "batch": 500,
        "index_timeout": 120.0,
    }
    defaults.update(sizes)
    return SearchOptions(
        backend=backend, postgres_url=PG_URL, redis_url=REDIS_URL, progress=False, **defaults
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_load_only(backend: str) -> None:
    result = await run_search(options(backend, load_only=True))
    assert result["ok"], result
    assert result["messages_loaded"] == 2_000
    assert result["members_left"] > 0  # visibility is not only "member or not"
    assert result["membership_mismatches"] == 0
    assert result["load_messages_per_s"] > 0
    assert result["recalled"] > 0 and result["edited"] > 0  # by their senders, after


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("index", ["worker", "reindex"])
async def test_search_bench(backend: str, index: str) -> None:
    result = await run_search(options(backend, index=index))
    assert result["errors"] == [] and result["query_errors"] == 0, result["errors"]
    assert result["violations"] == 0
    assert result["wrong_conversation"] == 0 and result["duplicate_hits"] == 0
    assert result["recalled"] > 0 and result["edited"] > 0
    assert result["recalled_hits"] == 0  # a recalled message is never a result
    assert result["stale_hits"] == 0  # an edited one is not found by its old text
    assert result["index_complete"], result
    assert result["index_messages_per_s"] > 0
    assert result["queries"] == 50
    assert result["hits"] > 0 and result["queries_with_hits"] > 0
    assert result["recall_queries"] > 0
    assert result["recall"] >= 0.95, result
    assert 0 < result["query_p50_ms"] <= result["query_p99_ms"]
    assert result["ok"], result


@pytest.mark.parametrize("backend", BACKENDS)
async def test_keep_then_reuse_queries_the_same_database_again(backend: str) -> None:
    """--keep leaves the directory (and database) with the corpus' state; --reuse runs
    the queries and checks on it again without loading or indexing anything."""
    import shutil

    from tidings.bench.search import STATE_FILE
    from tidings.store.sql.engines.postgres import execute_outside_transaction

    first = await run_search(options(backend, keep=True))
    data = Path(str(first["kept"]).split(" ")[0])
    try:
        assert first["ok"], first
        assert (data.parent / STATE_FILE).is_file()
        again = await run_search(options(backend, reuse=data.parent))
        assert again["ok"], again
        assert again["reused"] == str(data.parent)
        assert again["indexed"] == 0  # nothing loaded or indexed again
        assert again["index_complete"] and again["violations"] == 0
        assert again["hits"] == first["hits"] and again["recall"] == first["recall"]
        with pytest.raises(ValueError):
            await run_search(
                options("postgres" if backend == "sqlite" else "sqlite", reuse=data.parent)
            )
    finally:
        if backend == "postgres":
            db = str(first["kept"]).split(" ")[1].rsplit("/", 1)[1]
            await execute_outside_transaction(PG_URL, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(data.parent, ignore_errors=True)


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "tidings", "bench", "search", *args],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )


def test_cli_load_only_prints_one_json_line() -> None:
    """The loader's services log at info; with --json stdout is the one result line."""
    done = _cli(
        "--spawn", "--load-only", "--json", "--messages", "300", "--conversations", "5",
        "--users", "12", "--batch", "100",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    result = orjson.loads(lines[0])
    assert result["ok"] and result["messages_loaded"] == 300
    assert result["membership_mismatches"] == 0


def test_cli_needs_spawn() -> None:
    done = _cli("--load-only", "--messages", "10")
    assert done.returncode == 2
    assert b"--spawn" in done.stderr
