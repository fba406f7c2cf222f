"""services/metrics.py: the plain counts the hot path adds to."""

from __future__ import annotations

from tidings.services.metrics import Counts, Histogram, Tally


def test_a_histogram_puts_each_value_in_its_bucket_cumulatively() -> None:
    h = Histogram((1, 2, 4))
    for value in (0.5, 1, 1.5, 3, 4, 9):
        h.observe(value)
    # upper bounds are inclusive (Prometheus's le): 1 goes to le=1, 4 to le=4
    assert h.cumulative() == [(1, 2), (2, 3), (4, 5), (float("inf"), 6)]
    assert h.count == 6 and h.total == 19.0


def test_a_tally_exports_known_values_from_the_start() -> None:
    t = Tally(("send", "ping"))
    t.add("send")
    t.add("send", 4)
    t.add("other")
    assert t.values == {"send": 5, "ping": 0, "other": 1}


def test_logins_by_method_and_outcome() -> None:
    c = Counts()
    c.login("password", "ok")
    c.login("password", "ok")
    c.login("password", "invalid_credentials")
    assert c.logins == {("password", "ok"): 2, ("password", "invalid_credentials"): 1}
