"""What the services and the transports count, as plain integers.

The hot path (send -> group commit -> fan-out) adds to these and does nothing else: an
attribute or dict addition costs about 0.05-0.3 µs, where a prometheus-client
`Counter.inc()` takes a lock (about 1.2 µs here, 3.3 µs in its multiprocess mode, a
labelled child's lookup 5 µs more; docs/benchmarks.md, "Metrics"). app/metrics.py reads
them when /metrics is scraped and renders them in the Prometheus format; nothing here
knows that format.

Every label is from a bounded set (a frame type the parser knows, an error code, a
login method, an outcome), never a user or conversation id.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence


class Tally:
    """Counts by one bounded label value."""

    __slots__ = ("values",)

    def __init__(self, known: Sequence[str] = ()) -> None:
        # the values known in advance are exported from the start, at 0
        self.values: dict[str, int] = dict.fromkeys(known, 0)

    def add(self, key: str, n: int = 1) -> None:
        values = self.values
        values[key] = values.get(key, 0) + n


class Histogram:
    """Observations in cumulative buckets (upper bounds, ascending; +Inf is implied),
    with their sum: what a Prometheus histogram is, at one bisect per observation."""

    __slots__ = ("bounds", "buckets", "count", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.buckets = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), +Inf last."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out


# A group commit holds 1 to SEND_BATCH_MAX sends (services/messages.py).
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
COMMIT_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0
)


class Counts:
    """One process's counts (the container makes one; every service and transport of
    that process adds to it)."""

    def __init__(self) -> None:
        # group commit (services/messages.py): sends answered with their stored message,
        # sends refused by error code, and each batch's size and commit time
        self.sends_acknowledged = 0
        self.sends_refused = Tally()
        self.commit_batch_size = Histogram(BATCH_SIZE_BUCKETS)
        self.commit_seconds = Histogram(COMMIT_SECONDS_BUCKETS)
        self.commit_failures = 0  # batches whose transaction failed (retried one by one)
        # WebSocket frames (gateway/ws.py, gateway/hub.py), by frame type
        self.frames_in = Tally(("auth", "send", "read", "typing", "presence", "ping"))
        self.frames_out = Tally(("ready", "event", "ack", "error", "ephemeral"))
        self.slow_disconnects = 0  # connections closed for falling too far behind
        self.ws_open = 0  # WebSocket connections open (authenticated or not)
        # logins by method (password, bot_token, ...) and outcome (ok or an error code)
        self.logins: dict[tuple[str, str], int] = {}
        # refusals of services/ratelimit.py by action
        self.rate_limited = Tally()
        # webhook deliveries by outcome (services/webhooks.py, where it runs)
        self.webhook_deliveries = Tally()
        # scheduled backup attempts that failed in this process (app/backup.py)
        self.backup_failures = 0

    def login(self, method: str, outcome: str) -> None:
        key = (method, outcome)
        self.logins[key] = self.logins.get(key, 0) + 1
