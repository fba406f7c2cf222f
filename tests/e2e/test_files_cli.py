"""`tidings files usage` and `tidings files gc`, run as an operator would against a
site with uploads (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import subprocess

import orjson

from tests import processes
from tests.conftest import AppServer, MakeServer, World


def tidings(server: AppServer, *args: str) -> subprocess.CompletedProcess[str]:
    return processes.run(
        [*args, "--data-dir", str(server.data_dir)],
        timeout=60,
        env={
            **os.environ,
            "COLUMNS": "200",
            "TIDINGS_FILES_GC_GRACE_SECONDS": "0",
            **server.backend.env,
        },
    )


async def test_usage_and_collection_from_the_command_line(make_server: MakeServer) -> None:
    async with make_server() as server:
        world = World(server)
        try:
            ann, ben = await world.users("ann", "ben")
            for api, data in ((ann, b"a" * 300), (ann, b"b" * 200), (ben, b"c" * 50)):
                r = await api.http.post("/files", files={"file": ("x.txt", data, "text/plain")})
                assert r.status_code == 201, r.text
            cid = await world.conversation(ann, ben)
            kept = (await ben.http.post("/files", files={"file": ("k.txt", b"kept")})).json()
            await ben.send(cid, "x", attachments=[kept["file"]["id"]])

            usage = await asyncio.to_thread(tidings, server, "files", "usage", "--json")
            assert usage.returncode == 0, usage.stderr
            rows = orjson.loads(usage.stdout)
            assert [(r["username"], r["files"], r["bytes"]) for r in rows] == [
                ("ann", 2, 500),
                ("ben", 2, 54),
            ]
            table = await asyncio.to_thread(tidings, server, "files", "usage")
            assert "ann" in table.stdout and "500" in table.stdout

            gc = await asyncio.to_thread(tidings, server, "files", "gc", "--json")
            assert gc.returncode == 0, gc.stderr
            assert orjson.loads(gc.stdout) == {"files": 3, "blobs": 3, "bytes": 550}
            listed = await asyncio.to_thread(tidings, server, "files", "usage", "--json")
            assert listed.returncode == 0, listed.stderr
            after = orjson.loads(listed.stdout)
            assert [(r["username"], r["files"]) for r in after] == [("ben", 1)]
            assert (await ben.http.get(f"/files/{kept['file']['id']}")).content == b"kept"
            helped = await asyncio.to_thread(tidings, server, "files", "--help")
            assert "usage" in helped.stdout and "gc" in helped.stdout
        finally:
            await world.close()
