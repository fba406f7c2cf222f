"""CPU time and memory of a process (and its children) read from /proc (Linux).

Only ``/proc/PID/stat`` and ``/proc/PID/status`` are read; nothing here needs
privileges beyond seeing the process.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process tree."""

    at: float
    cpu_seconds: float
    """user + system time of the process and its live descendants (and reaped children)."""
    rss_bytes: int
    """Resident set size now (VmRSS), summed over the tree."""
    hwm_bytes: int
    """Peak resident set size (VmHWM) of the main process."""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    close = text.rfind(")")
    return text[close + 2 :].split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = (_PROC / str(pid) / "task").iterdir()
        for task in tasks:
            try:
                out.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    except OSError:
        return out
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    seen = [pid]
    index = 0
    while index < len(seen):
        for child in _children(seen[index]):
            if child not in seen:
                seen.append(child)
        index += 1
    return seen


def sample(pid: int) -> ProcSample | None:
    """Read the CPU time and memory of ``pid`` and its descendants; None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    cpu_ticks = 0
    rss_kib = 0
    for index, member in enumerate(process_tree(pid)):
        f = fields if index == 0 else _stat_fields(member)
        if f is None:
            continue
        # After the name: state(3) ppid ... utime(14) stime(15) cutime(16) cstime(17):
        # index = field number - 3.
        cpu_ticks += int(f[11]) + int(f[12])
        if index == 0:
            cpu_ticks += int(f[13]) + int(f[14])
        rss_kib += _status_kib(member, "VmRSS")
    return ProcSample(
        at=time.monotonic(),
        cpu_seconds=cpu_ticks / _CLK_TCK,
        rss_bytes=rss_kib * 1024,
        hwm_bytes=_status_kib(pid, "VmHWM") * 1024,
    )


def own_cpu_seconds() -> float:
    """CPU seconds (user + system) used by this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft open-file limit towards ``wanted`` (up to the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)
