"""The password policy: what a new password must be, wherever one is set (an admin
creating a user or resetting a password, a user changing theirs, the owner made at first
start, the command line).

Length first (`password_min_length` to 1024 characters), then not blank, not the
username nor containing it, then a strength estimate: zxcvbn's guess count scored 0-4,
at least `password_min_score`. zxcvbn knows the common and leaked passwords (ranked
lists from real breaches), English words, names, keyboard walks, repeats, sequences,
dates and l33t substitutions, so `12345678`, `password1` or `qwertyuiop` score 0.

The estimator is zxcvbn-rs (the Rust port) through `zxcvbn-rs-py`, not the pure Python
`zxcvbn`: same lists and the same scores on the passwords we tried, about 6 times faster
(0.2 ms against 1.1 ms for a typical password; a 1024-character one in under 25 ms,
where the Python one refuses anything over 72 characters), it releases the GIL, keeps no
global state between calls (the Python one stores `user_inputs` in a module-level dict,
which threads would share), ships types, and has wheels for Linux (glibc and musl, x86-64
and ARM), macOS and Windows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from zxcvbn_rs_py import Warning as ZxWarning
from zxcvbn_rs_py import zxcvbn

from tidings.core.errors import PasswordFeedback, WeakPassword
from tidings.core.rules import MAX_PASSWORD_CHARS

# a username this short is not looked for inside the password (it would refuse most)
MIN_USERNAME_CHARS_INSIDE = 3
_COMMON = (  # a tuple: the binding's enum values are not hashable
    ZxWarning.ThisIsATop10Password,
    ZxWarning.ThisIsATop100Password,
    ZxWarning.ThisIsACommonPassword,
    ZxWarning.ThisIsSimilarToACommonlyUsedPassword,
)


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    min_length: int
    min_score: int


def _feedback(warning: ZxWarning | None, suggestions: list[str]) -> PasswordFeedback:
    return {"warning": "" if warning is None else str(warning), "suggestions": suggestions}


def weakness(
    policy: PasswordPolicy, password: str, username: str, display_name: str = ""
) -> WeakPassword | None:
    """Why `password` is refused for `username`, or None when it is good enough. Pure
    (CPU only: a few milliseconds at most)."""
    if len(password) < policy.min_length:
        return WeakPassword(
            f"the password must have at least {policy.min_length} characters",
            field="password",
            reason="too_short",
            min_length=policy.min_length,
        )
    if len(password) > MAX_PASSWORD_CHARS:
        return WeakPassword(
            f"the password must have at most {MAX_PASSWORD_CHARS} characters",
            field="password",
            reason="too_long",
        )
    if not password.strip():
        return WeakPassword(
            "the password must not be only spaces", field="password", reason="blank"
        )
    name = username.strip().casefold()
    folded = password.casefold()
    if name and (folded == name or (len(name) >= MIN_USERNAME_CHARS_INSIDE and name in folded)):
        return WeakPassword(
            "the password must not contain the username",
            field="password",
            reason="contains_username",
        )
    if policy.min_score <= 0:
        return None
    inputs = [name, *display_name.casefold().split()]  # words it would guess first
    estimate = zxcvbn(password, inputs)
    score = int(estimate.score)
    if score >= policy.min_score:
        return None
    warning = estimate.feedback.warning if estimate.feedback else None
    suggestions = [str(s) for s in estimate.feedback.suggestions] if estimate.feedback else []
    common = warning in _COMMON
    return WeakPassword(
        "the password is one of the most common ones: choose another"
        if common
        else "the password is too easy to guess: a few unusual words make a good one",
        field="password",
        reason="too_common" if common else "too_weak",
        score=score,
        min_score=policy.min_score,
        feedback=_feedback(warning, suggestions),
    )


async def check_new_password(
    policy: PasswordPolicy, password: str, username: str, display_name: str = ""
) -> None:
    """Raise WeakPassword (400 invalid_request, `details.reason`) if the policy refuses
    `password`. The estimate runs in a thread: a long password takes milliseconds."""
    refused = await asyncio.to_thread(weakness, policy, password, username, display_name)
    if refused is not None:
        raise refused
