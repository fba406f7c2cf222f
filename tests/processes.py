"""`python -m tidings ...` processes for the end-to-end tests, forked by the zygote
(tests/zygote.py) that imported Tidings once, instead of started from a bare
interpreter: a server start or an admin command costs the tests a fork, not the second
and a half of imports every start would repeat (hundreds of them in a test run).

`spawn` answers a `Process` (pid, poll, wait, send_signal, kill, terminate,
returncode: the part of `subprocess.Popen` the tests use), `run` a
`subprocess.CompletedProcess` as `subprocess.run(..., capture_output=True)` would.
The real entry point itself, a bare `python -m tidings`, is still what
tests/e2e/test_cli.py's first test and the README's quick start check run."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

ZYGOTE = Path(__file__).with_name("zygote.py")


class Zygote:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, str(ZYGOTE), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self._lock = threading.Lock()  # one request at a time
        self._pids: queue.Queue[int] = queue.Queue()
        # the children not yet reported ended, by pid; a pid the kernel hands out again
        # later is another child (the one before was reaped and reported first: the
        # zygote reaps before it forks, and the socket keeps the order)
        self._live: dict[int, Process] = {}
        self._early: dict[int, int] = {}  # ended before fork() took its pid in
        self._gone = False  # the zygote itself exited
        self._ended = threading.Condition()
        threading.Thread(target=self._read, name="zygote-reader", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                with self._ended:
                    self._gone = True
                    self._ended.notify_all()
                self._pids.put(-1)
                return
            message = json.loads(data)
            if "pid" in message:
                self._pids.put(int(message["pid"]))
            else:
                with self._ended:
                    pid, rc = int(message["exit"]), int(message["rc"])
                    child = self._live.pop(pid, None)
                    if child is None:
                        self._early[pid] = rc
                    else:
                        child.returncode = rc
                    self._ended.notify_all()

    def fork(
        self, args: Sequence[str], env: Mapping[str, str], cwd: str, fds: list[int]
    ) -> Process:
        request = {"args": list(args), "env": dict(env), "cwd": cwd}
        with self._lock:
            socket.send_fds(self.sock, [json.dumps(request).encode()], fds)
            pid = self._pids.get(timeout=30)
            if pid < 0:
                raise RuntimeError(f"the test zygote exited ({self.proc.poll()})")
            child = Process(args, pid, self)
            with self._ended:
                if pid in self._early:  # it has ended already
                    child.returncode = self._early.pop(pid)
                else:
                    self._live[pid] = child
        return child

    def wait(self, child: Process, timeout: float | None) -> int | None:
        with self._ended:
            self._ended.wait_for(lambda: child.returncode is not None or self._gone, timeout)
            return child.returncode

    def close(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def zygote() -> Zygote:
    global _zygote
    with _zygote_lock:
        if _zygote is None or _zygote.proc.poll() is not None:
            _zygote = Zygote()
            atexit.register(_zygote.close)
        return _zygote


class Process:
    """A forked `python -m tidings ...`, as far as the tests use `subprocess.Popen`."""

    def __init__(self, args: Sequence[str], pid: int, parent: Zygote) -> None:
        self.args = list(args)
        self.pid = pid
        self._parent = parent
        self.returncode: int | None = None  # set when the zygote reports it ended

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._parent.wait(self, timeout)
        if code is None:
            if timeout is not None and self._parent.proc.poll() is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            raise RuntimeError("the test zygote exited before its child")
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # ended; the zygote reports it
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def spawn(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    stdout: IO[bytes] | int,
    stderr: IO[bytes] | int | None = None,
    cwd: str | Path | None = None,
) -> Process:
    """`python -m tidings *args` with this environment; stdout a file (or descriptor),
    stderr another or, when None, the same (subprocess.STDOUT)."""
    out = stdout if isinstance(stdout, int) else stdout.fileno()
    err = out if stderr is None else stderr if isinstance(stderr, int) else stderr.fileno()
    with open(os.devnull, "rb") as null:
        parent = zygote()
        return parent.fork(args, env, str(cwd or os.getcwd()), [null.fileno(), out, err])


def run(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    input: str | None = None,
    timeout: float = 60,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([python, -m, tidings, *args], capture_output=True, text=True)`."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe()
    parent = zygote()
    try:
        proc = parent.fork(args, env, str(cwd or os.getcwd()), [in_r, out_w, err_w])
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}

    def drain(fd: int) -> None:
        with open(fd, "rb", closefd=True) as f:
            chunks[fd].append(f.read())

    readers = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in chunks]
    for r in readers:
        r.start()
    with open(in_w, "wb", closefd=True) as stdin:
        if input is not None:
            with contextlib.suppress(BrokenPipeError):
                stdin.write(input.encode())
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise
    for r in readers:
        r.join(10)
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "tidings", *args],
        code,
        b"".join(chunks[out_r]).decode(errors="replace"),
        b"".join(chunks[err_r]).decode(errors="replace"),
    )
