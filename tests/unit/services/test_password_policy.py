"""The password policy, pure: length, blank, the username, then zxcvbn's score."""

from __future__ import annotations

import pytest

from tidings.services.password_policy import PasswordPolicy, weakness

POLICY = PasswordPolicy(min_length=8, min_score=3)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("12345678", "too_common"),
        ("password1", "too_common"),
        ("qwertyuiop", "too_common"),
        ("iloveyou", "too_common"),
        ("p@ssw0rd", "too_common"),  # l33t does not hide it
        (" " * 8, "blank"),
        ("\t \u3000 \n  \u00a0 ", "blank"),  # any kind of space
        ("x" * 1025, "too_long"),
        ("alice", "too_short"),
        ("aliceliddell", "contains_username"),
        ("ALICE-in-the-plum-orbit", "contains_username"),
        ("abcdefgh", "too_weak"),
    ],
)
def test_refused(password: str, reason: str) -> None:
    refused = weakness(POLICY, password, "alice")
    assert refused is not None and refused.details["reason"] == reason
    assert refused.code == "invalid_request" and refused.details["field"] == "password"


def test_a_strong_passphrase_passes() -> None:
    assert weakness(POLICY, "correct horse battery staple", "alice") is None
    assert weakness(POLICY, "plum-orbit-123", "alice") is None
    assert weakness(POLICY, "x7#Lq!9vR2@m", "alice") is None


def test_the_estimate_says_why_and_what_would_help() -> None:
    refused = weakness(POLICY, "password1", "alice")
    assert refused is not None
    assert refused.details["score"] == 0 and refused.details["min_score"] == 3
    assert "common" in refused.details["feedback"]["warning"]
    assert refused.details["feedback"]["suggestions"]
    short = weakness(PasswordPolicy(min_length=12, min_score=3), "plum-orbit1", "alice")
    assert short is not None and short.details == {
        "field": "password",
        "reason": "too_short",
        "min_length": 12,
    }


def test_the_display_name_counts_as_a_guess() -> None:
    for password in ("fairweather2026", "Zebulonfairweather"):
        assert weakness(POLICY, password, "zf") is None
        assert weakness(POLICY, password, "zf", "Zebulon Fairweather") is not None


def test_short_usernames_are_not_looked_for_inside() -> None:
    """A two-letter name would refuse half of all passwords; it may not be the whole."""
    assert weakness(POLICY, "plum-orbit-123", "or") is None
    refused = weakness(POLICY, "Or", "or")
    assert refused is not None  # too short anyway, but equal is refused at any length
    assert weakness(PasswordPolicy(1, 0), "Or", "or") is not None


def test_min_score_zero_checks_the_rest_only() -> None:
    lax = PasswordPolicy(min_length=8, min_score=0)
    assert weakness(lax, "12345678", "alice") is None
    assert weakness(lax, " " * 8, "alice") is not None
    assert weakness(lax, "alice123", "alice") is not None
