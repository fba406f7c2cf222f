"""A fatal signal says what happened, in one line, instead of the process vanishing.

SQLite in WAL mode maps the database's `-shm` file (the WAL index, shared by every
connection and process using the database) into memory; the database file itself is
not mapped (`PRAGMA mmap_size=0`, sqlite.py). If that file is truncated under the
server, or the disk beneath it fails, the next access to the mapping raises SIGBUS:
the kernel kills the process, without a word (reproduced: `truncate -s 0
tidings.db-shm` while the server runs, then one send: exit -7, nothing on stderr).
A full disk is not such a case: SQLite allocates the file's pages by writing them, so
it answers SQLITE_FULL and the write answers `unavailable`.

Python cannot catch SIGBUS (its handler would only run after the faulting instruction,
which runs again and faults again), so this installs a C-level handler (through ctypes)
that writes one prepared line to stderr and exits with EX_IOERR (74) at once. Nothing
acknowledged is lost: a send is acknowledged only after its commit, which the log
keeps; the `-shm` file is rebuilt when the database is next opened.
Every other fatal signal (a segfault or an abort: a bug) is left to Python's
`faulthandler`, whose traceback of the faulting thread helps to find it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
from pathlib import Path

EX_IOERR = 74  # sysexits.h: an error doing I/O on a file

_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int)
_installed: list[object] = []  # the C callbacks, alive as long as the process


def bus_error_line(data_dir: Path) -> str:
    return (
        f"tidings: fatal SIGBUS while accessing the data directory {data_dir}: check the"
        " disk (failing, unmounted, full) and that nothing else truncates or changes its"
        " files, then start again"
    )


def report_fatal_signals(data_dir: Path) -> bool:
    """Install the handlers (once per process; later calls change the directory named).
    Returns False where it cannot (no C library to ask): the default applies there."""
    if not faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr, all_threads=False)
    line = (bus_error_line(data_dir.resolve()) + "\n").encode(errors="replace")
    stderr = sys.stderr.fileno() if _has_fileno() else 2

    def on_bus_error(_signum: int) -> None:
        # Nothing that could wait on a lock or allocate: one write, then exit.
        os.write(stderr, line)
        os._exit(EX_IOERR)

    handler = _HANDLER_TYPE(on_bus_error)
    try:
        libc = ctypes.CDLL(None)
        install = libc.signal
    except (OSError, AttributeError):
        return False
    install.restype = ctypes.c_void_p
    install.argtypes = [ctypes.c_int, _HANDLER_TYPE]
    previous = install(signal.SIGBUS, handler)
    if previous is not None and previous == ctypes.c_void_p(-1).value:  # SIG_ERR
        return False
    _installed.append(handler)
    return True


def _has_fileno() -> bool:
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
