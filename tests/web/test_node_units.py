"""The web client's pure modules (state.js, sync.js, markdown.js) under Node's own test runner.

`node --test tests/web/` runs every `*.test.mjs` here; this test runs it so that pytest
(and so CI) fails when they fail. Without Node it skips, or fails under
TIDINGS_REQUIRE_SERVICES=1 (as CI sets: .ci/run installs Debian's `nodejs`).
markdown.test.mjs renders hostile messages of the server's largest size: it reads that
size from TIDINGS_MAX_MESSAGE_BYTES, set here from the setting's default.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tidings.app.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_web_units_pass_under_node_test() -> None:
    node = shutil.which("node")
    if node is None:
        message = "node is not installed (apt-get install nodejs)"
        if os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)
    max_message_bytes = Settings.model_fields["max_message_bytes"].default
    files = sorted(HERE.glob("*.test.mjs"))
    assert files, "no *.test.mjs files in tests/web"
    proc = subprocess.run(
        [node, "--test", *(str(f.relative_to(ROOT)) for f in files)],
        cwd=ROOT,
        env={**os.environ, "TIDINGS_MAX_MESSAGE_BYTES": str(max_message_bytes)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    # The runner's summary: every test ran, none failed.
    passed = re.search(r"^# pass (\d+)$", proc.stdout, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", proc.stdout, re.MULTILINE)
    assert passed and failed, output[-2000:]
    assert int(failed.group(1)) == 0
    # The reducer, the session, the shared client vectors and the Markdown all ran
    # (56 tests today).
    assert int(passed.group(1)) >= 55, output[-2000:]
