"""The zygote: one Python process per test process that has imported Tidings (the CLI,
the server, the store and the migrations) once, and forks a child for each
`python -m tidings ...` an end-to-end test runs (tests/processes.py is the other end).

A child is what `python -m tidings ARGS` would be, without the second and a half of
CPU its imports cost: the test's environment (replacing the zygote's, in place),
working directory and standard streams (file descriptors passed over the socket), its
own random state, `sys.argv` and `__main__` as `-m` sets them (runpy), and a normal
interpreter exit (atexit, non-daemon threads) with the command's exit status. Tests
signal and kill it by pid like any process; the zygote reaps it and reports its
exit status the way `subprocess` does (`-N` for a signal).

Run as `python tests/zygote.py FD`, FD a SOCK_SEQPACKET socket: each request is one
message, JSON `{"args", "env", "cwd"}` with three descriptors (stdin, stdout, stderr);
the zygote answers `{"pid": N}`, and `{"exit": N, "rc": R}` when a child ends. It
exits when the socket closes (the test process is gone), killing its children."""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
import runpy
import select
import signal
import socket
import sys

# What every command and the server import; nothing here may start a thread or open a
# connection (a fork copies only the calling thread).
import tidings.app.container
import tidings.app.server
import tidings.cli.main
import tidings.store.migrations

# the click command, with `bench`, as every child's main() builds it (a quarter second)
tidings.cli.main.command()
# what a server or a command loads on its way (the search adapters, 0.4 s; the event
# loop; the segmenter's dictionary, which a server loads at start: warmed here, in this
# thread, so that no child pays it)
import httpcore  # noqa: E402, F401
import uvloop  # noqa: E402, F401

import tidings.search.fts5  # noqa: E402
import tidings.search.postgres  # noqa: E402
import tidings.search.sqlindex  # noqa: E402
import tidings.search.text  # noqa: E402

tidings.search.text.warm_up()


def _child(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become `python -m tidings ARGS`. Never returns normally:
    the command's SystemExit unwinds to the interpreter's own exit."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    cwd = str(request["cwd"])
    os.chdir(cwd)
    sys.path[0] = cwd  # what `python -m` puts first
    # then the child's PYTHONPATH (a test's plugin on it, say), as its interpreter would
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    sys.path[1:1] = [os.path.abspath(p) for p in extra]
    importlib.invalidate_caches()
    random.seed()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    args = request["args"]
    assert isinstance(args, list)
    sys.argv = ["-m", *map(str, args)]
    runpy.run_module("tidings", run_name="__main__", alter_sys=True)
    raise SystemExit(0)


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        message = {"exit": pid, "rc": os.waitstatus_to_exitcode(status)}
        sock.send(json.dumps(message).encode())


def serve(sock: socket.socket) -> None:
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.02)
        _reap(sock, children)
        if not ready:
            continue
        data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 3)
        if not data:  # the test process closed its end
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            return
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(json.loads(data), fds)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        sock.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    # What was imported is never collected: out of the collector's sight (gc.freeze), a
    # child's collections neither walk it nor touch (and so copy) its pages
    gc.freeze()
    serve(socket.socket(fileno=int(sys.argv[1])))
