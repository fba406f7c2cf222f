"""The web client's pure modules (state.js, sync.js) under Node's own test runner.

`node --test tests/web/` runs every `*.test.mjs` here; this test runs it so that pytest
(and so CI) fails when they fail. Without Node it skips, or fails under
TIDINGS_REQUIRE_SERVICES=1 (as CI sets: .ci/run installs Debian's `nodejs`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_web_units_pass_under_node_test() -> None:
    node = shutil.which("node")
    if node is None:
        message = "node is not installed (apt-get install nodejs)"
        if os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)
    files = sorted(HERE.glob("*.test.mjs"))
    assert files, "no *.test.mjs files in tests/web"
    proc = subprocess.run(
        [node, "--test", *(str(f.relative_to(ROOT)) for f in files)],
        cwd=ROOT,
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
    # The reducer, the session and the shared client vectors all ran (52 tests today).
    assert int(passed.group(1)) >= 50, output[-2000:]
