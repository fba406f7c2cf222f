"""A job's rules without IO: kinds, policies, the backoff between attempts."""

from __future__ import annotations

import random

import pytest

from tidings.core.jobs import JobPolicy, JobState, backoff, check_kind, short_error


@pytest.mark.parametrize("kind", ["webhooks.deliver", "plugin.after_event:dlp", "a", "x1.y_2"])
def test_kinds_that_are_names(kind: str) -> None:
    assert check_kind(kind) == kind


@pytest.mark.parametrize(
    "kind", ["", "Webhooks", "9lives", "a..b", "a b", "a.b/c", "x" * 65, "a:", "a:b c", "é"]
)
def test_kinds_that_are_not(kind: str) -> None:
    with pytest.raises(ValueError):
        check_kind(kind)


def test_a_policy_needs_attempts_a_timeout_and_a_queue_name() -> None:
    for bad in ({"max_attempts": 0}, {"timeout_seconds": 0}, {"queue": "Has Space"}):
        with pytest.raises(ValueError):
            JobPolicy(**bad)  # type: ignore[arg-type]


def test_backoff_doubles_is_capped_and_jittered_between_half_and_all() -> None:
    rng = random.Random(7)
    for attempts, ceiling in ((1, 2), (2, 4), (3, 8), (6, 64), (7, 100), (60, 100)):
        waits = [backoff(attempts, 2, 100, rng).total_seconds() for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 4  # jitter: they do not retry together


def test_finished_states_and_short_errors() -> None:
    assert {s for s in JobState if s.finished} == {JobState.DONE, JobState.DEAD}
    assert short_error(ValueError("x" * 5000)).startswith("ValueError: x")
    assert len(short_error(ValueError("x" * 5000))) == 2000
    assert short_error(TimeoutError()) == "TimeoutError"
