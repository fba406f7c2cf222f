"""protocol/session.py, frames in / frames out: the connection rules without IO.

ServerSession: what the gateway keeps per connection (tests moved here from
test_hub.py keep their assertions). ClientSession: driven by the language-neutral
vectors in tests/protocol_vectors/client_session.json (the web client's sync.js runs the
same file), plus the limits a vector cannot reach. Branch coverage of the module must
stay at 100% (test_the_session_module_is_fully_covered)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tidings.core.errors import InvalidPosition
from tidings.protocol.session import (
    AUTH_REQUIRED,
    CLOSE_AUTH,
    CLOSE_BAD_RESUME,
    CLOSE_REVOKED,
    CLOSE_TRY_LATER,
    NORMAL,
    TOO_SLOW,
    TRY_LATER,
    Answered,
    ClientSession,
    Close,
    Delivered,
    Dropped,
    Ended,
    Ignored,
    Next,
    Outcome,
    Phase,
    Ready,
    ReconnectSoon,
    Refused,
    ServerSession,
    Signal,
    bad_resume,
    position_key,
    revoked,
)

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "protocol_vectors" / "client_session.json"
CID = "c1"


# --- server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    """A committed event as the session reads it (bus.ports.Envelope has these fields)."""

    position: int | None
    conversation_id: str | None = CID
    sender_id: str | None = None
    client_msg_id: str | None = None
    added_user_ids: Sequence[str] = ()
    removed_user_id: str | None = None
    first_seq: int = 1


def live(user_id: str = "alice", since: int | None = None, head: int = 0) -> ServerSession[str]:
    s: ServerSession[str] = ServerSession()
    assert s.first_frame("auth") is None
    s.authenticated(user_id)
    s.resume_from(since, head)
    assert s.end_replay() == []
    assert s.phase is Phase.LIVE
    return s


def deliver(s: ServerSession[str], *events: Ev) -> list[str]:
    """Feed events as the hub does; what is written now."""
    out = []
    for e in events:
        item = s.event(e, f"ev:{e.position}")
        if item is not None:
            out.append(item)
    return out


def test_the_first_frame_must_be_auth() -> None:
    s: ServerSession[str] = ServerSession()
    assert s.phase is Phase.AUTH
    assert s.first_frame("ping") == AUTH_REQUIRED
    assert AUTH_REQUIRED.code == CLOSE_AUTH == 4001
    assert s.closed and s.close_decision == AUTH_REQUIRED
    assert s.first_frame("ping") is None  # decided once


def test_a_refused_token_or_no_auth_in_time_closes_with_4001() -> None:
    s: ServerSession[str] = ServerSession()
    assert s.first_frame("auth") is None and not s.closed
    assert s.auth_failed() == AUTH_REQUIRED
    assert s.auth_failed() is None
    s.authenticated("alice")  # too late: stays closed
    assert s.closed and s.user_id == ""


def test_a_token_the_server_could_not_check_closes_with_1013_not_4001() -> None:
    s: ServerSession[str] = ServerSession()
    assert s.first_frame("auth") is None
    assert s.auth_unchecked() == TRY_LATER
    assert TRY_LATER.code == CLOSE_TRY_LATER == 1013 != CLOSE_AUTH
    assert s.closed and s.close_decision == TRY_LATER
    assert s.auth_failed() is None  # decided once: the client is not told 4001 after it


def test_authenticated_replays_until_end_replay() -> None:
    s: ServerSession[str] = ServerSession()
    assert s.event(Ev(1), "ev:1") is None  # not even authenticated: nothing
    s.authenticated("alice")
    assert s.replaying and s.user_id == "alice"
    s.authenticated("bob")  # once
    assert s.user_id == "alice"
    assert s.resume_from(None, 7) == 7 and s.last_position == 7
    assert s.end_replay() == [] and not s.replaying
    assert s.end_replay() == []  # once


def test_a_since_ahead_of_the_head_is_refused() -> None:
    s: ServerSession[str] = ServerSession()
    s.authenticated("alice")
    with pytest.raises(InvalidPosition):
        s.resume_from(11, 10)
    assert s.resume_from(10, 10) == 10
    assert bad_resume("invalid_position") == Close(CLOSE_BAD_RESUME, "invalid_position")


def test_positions_at_or_below_the_last_one_are_dropped() -> None:
    s = live()
    assert deliver(s, *(Ev(p) for p in (1, 2, 2, 1, 3))) == ["ev:1", "ev:2", "ev:3"]
    assert s.last_position == 3


def test_live_events_are_buffered_during_replay_then_deduplicated() -> None:
    s: ServerSession[str] = ServerSession()
    s.authenticated("alice")
    assert s.resume_from(10, 13) == 10  # the client's `since`, the head read
    # Live traffic while the replay runs: 12 and 13 will be in the replay too, 14 is new.
    assert deliver(s, Ev(12), Ev(13), Ev(14)) == []
    assert s.buffered == [12, 13, 14]
    for p in (11, 12, 13):  # the replay, as the gateway writes it, up to the head
        s.replayed(p)
    assert s.end_replay() == ["ev:14"]
    assert not s.replaying and s.buffered == []
    assert deliver(s, Ev(15)) == ["ev:15"]


def test_end_replay_with_everything_already_replayed_adds_nothing() -> None:
    s: ServerSession[str] = ServerSession()
    s.authenticated("alice")
    s.resume_from(0, 1)
    assert deliver(s, Ev(1)) == []
    s.replayed(1)
    assert s.end_replay() == []


def test_buffered_lists_positions_only() -> None:
    s: ServerSession[str] = ServerSession()
    s.authenticated("alice")
    s.event(Ev(None), "no position")
    s.event(Ev(4), "ev:4")
    assert s.buffered == [4]


def test_a_buffered_own_event_is_still_held_for_its_ack() -> None:
    s: ServerSession[str] = ServerSession()
    s.authenticated("alice")
    s.resume_from(0, 0)
    s.send_started("m1")
    deliver(s, Ev(1, sender_id="alice", client_msg_id="m1"), Ev(2))
    assert s.end_replay() == []
    assert s.holding == 2
    assert s.send_finished("m1", "ack:r1") == ["ack:r1", "ev:1", "ev:2"]


# the sender's ack comes before the event of its own message


def test_ack_before_own_event() -> None:
    s = live()
    s.send_started("m1")
    assert deliver(s, Ev(1, sender_id="alice", client_msg_id="m1")) == []  # held until the ack
    assert s.holding == 1
    assert s.send_finished("m1", "ack:r1") == ["ack:r1", "ev:1"]
    assert s.holding == 0 and s.pending_sends == set()


def test_events_after_a_held_one_keep_their_order() -> None:
    s = live()
    s.send_started("m1")
    held = deliver(
        s,
        Ev(1, sender_id="alice", client_msg_id="m1"),
        Ev(2, conversation_id="c2", sender_id="bob", client_msg_id="x"),
    )
    assert held == []
    assert s.send_finished("m1", "ack:r1") == ["ack:r1", "ev:1", "ev:2"]


def test_two_pipelined_sends() -> None:
    s = live()
    s.send_started("m1")
    s.send_started("m2")
    deliver(
        s,
        Ev(1, sender_id="alice", client_msg_id="m1"),
        Ev(2, sender_id="alice", client_msg_id="m2"),
    )
    # the event of m2 waits for m2's ack
    assert s.send_finished("m1", "ack:r1") == ["ack:r1", "ev:1"]
    assert s.send_finished("m2", "ack:r2") == ["ack:r2", "ev:2"]
    assert s.holding == 0


def test_two_pipelined_sends_acked_out_of_order() -> None:
    s = live()
    s.pending_sends |= {"m1", "m2"}
    deliver(
        s,
        Ev(1, sender_id="alice", client_msg_id="m1"),
        Ev(2, sender_id="alice", client_msg_id="m2"),
    )
    # event 1 still waits for m1, and event 2 stays behind it
    assert s.send_finished("m2", "ack:r2") == ["ack:r2"]
    assert s.send_finished("m1", "ack:r1") == ["ack:r1", "ev:1", "ev:2"]


def test_a_failed_send_releases_what_was_held() -> None:
    s = live()
    s.pending_sends |= {"m1", "m2"}
    deliver(
        s,
        Ev(1, sender_id="alice", client_msg_id="m1"),
        Ev(2, sender_id="bob", client_msg_id="m2"),
    )
    assert s.send_finished("m2", None) == []  # m2 failed: its error was already written
    assert s.send_finished("m1", "ack:r1") == ["ack:r1", "ev:1", "ev:2"]


def test_own_message_from_another_device_is_not_held() -> None:
    phone, laptop = live(), live()
    laptop.send_started("m1")
    e = Ev(1, sender_id="alice", client_msg_id="m1")
    assert deliver(phone, e) == ["ev:1"]
    assert deliver(laptop, e) == []


def test_another_users_message_with_a_pending_id_is_not_held() -> None:
    s = live()
    s.send_started("m1")
    assert deliver(s, Ev(1, sender_id="bob", client_msg_id="m1")) == ["ev:1"]
    assert deliver(s, Ev(2, sender_id="alice", client_msg_id="other")) == ["ev:2"]


def test_a_retry_that_stores_nothing_still_gets_its_ack() -> None:
    s = live()
    s.send_started("m1")
    assert s.send_finished("m1", "ack:r1") == ["ack:r1"]  # the original was stored earlier
    assert s.pending_sends == set()


# membership


def test_join_and_leave() -> None:
    s = live()
    assert s.join(CID) and not s.join(CID)
    assert s.conversations == {CID}
    assert s.leave(CID) and not s.leave(CID)
    assert s.conversations == set()


def test_a_closed_connection_joins_nothing() -> None:
    s = live()
    s.close(NORMAL)
    assert not s.join(CID) and s.conversations == set()


def test_member_added_subscribes_before_delivery() -> None:
    s = live("bob")
    e = Ev(1, added_user_ids=("alice", "bob"))
    assert s.joins(e) == CID and CID in s.conversations
    assert s.joins(e) is None  # already there
    assert s.joins(Ev(2, added_user_ids=("carol",))) is None
    assert s.joins(Ev(3, conversation_id=None, added_user_ids=("bob",))) is None
    assert deliver(s, e) == ["ev:1"]


def test_a_member_added_later_sees_no_event_about_a_message_before_their_range() -> None:
    """History not shared with members added later: the connection keeps the first seq
    its user may read per conversation (from the snapshot, or the member_added event
    that adds them) and `sees` only events about messages from it on; a new message's
    event (no about_seq) always. Leaving forgets it; added back, the new range counts."""
    s = live("bob")
    assert s.first_seqs is None  # nothing held while every range starts at 1
    s.join("c0")  # the whole history
    assert s.first_seqs is None and s.first_seq("c0") == 1
    assert s.sees("c0", 1) and s.sees("c0", None)
    assert s.joins(Ev(1, added_user_ids=("bob",), first_seq=6)) == CID
    assert s.first_seq(CID) == 6 and s.first_seqs == {CID: 6}
    assert not s.sees(CID, 5) and s.sees(CID, 6) and s.sees(CID, 9) and s.sees(CID, None)
    s.join("c2", 3)
    assert s.first_seqs == {CID: 6, "c2": 3}
    assert not s.sees("c2", 2) and s.sees("c2", 3)
    assert s.join("c2", 9) is False and s.first_seq("c2") == 3  # joined already: as it was
    assert s.leave("c2") and s.first_seqs == {CID: 6}
    removal = Ev(2, removed_user_id="bob")
    assert deliver(s, removal) == ["ev:2"] and s.leaves(removal) == CID
    assert s.first_seqs is None and s.first_seq(CID) == 1
    assert s.leave("c0") and s.first_seqs is None
    # removed and added again later: the new range (a later first seq)
    assert s.joins(Ev(3, added_user_ids=("bob",), first_seq=12)) == CID
    assert not s.sees(CID, 11) and s.sees(CID, 12)


def test_member_removed_is_delivered_then_unsubscribed() -> None:
    s = live("bob")
    s.join(CID)
    s.join("c2")
    e = Ev(1, removed_user_id="bob")
    assert deliver(s, e) == ["ev:1"]  # the removed one gets the removal
    assert s.leaves(e) == CID
    assert CID not in s.conversations and "c2" in s.conversations
    assert s.leaves(e) is None  # not there any more
    assert s.leaves(Ev(2, conversation_id="c2", removed_user_id="alice")) is None
    assert s.leaves(Ev(3, conversation_id=None, removed_user_id="bob")) is None



def test_a_removal_before_the_snapshot_joins_keeps_the_snapshot_from_joining() -> None:
    """Replaying, the connection is told of a removal from a conversation it has not
    joined yet: its snapshot (older than the removal) must not join it; being added
    back does. Live, such a removal changes nothing."""
    s: ServerSession[str] = ServerSession()
    s.authenticated("bob")
    assert s.leaves(Ev(11, removed_user_id="bob")) is None
    assert not s.join(CID) and CID not in s.conversations  # the stale snapshot
    assert s.joins(Ev(12, added_user_ids=("bob",))) == CID  # added back
    assert s.leaves(Ev(13, removed_user_id="bob")) == CID
    assert s.leaves(Ev(14, conversation_id="c2", removed_user_id="bob")) is None
    s.resume_from(None, 14)
    s.end_replay()
    assert s.join("c2")  # live, nothing is remembered
    later = live("bob")
    assert later.leaves(Ev(15, removed_user_id="bob")) is None
    assert later.join(CID)

# ephemeral signals and closing


def test_ephemeral_signals_go_to_live_connections_of_other_users() -> None:
    s: ServerSession[str] = ServerSession()
    s.authenticated("bob")
    assert not s.ephemeral("alice")  # still replaying: not worth out-of-order delivery
    s.end_replay()
    assert s.ephemeral("alice") and s.ephemeral(None)
    assert not s.ephemeral("bob")  # the typist's own connections skip it
    s.close(TOO_SLOW)
    assert not s.ephemeral("alice")


def test_the_first_close_decision_stands_and_nothing_follows_it() -> None:
    s = live()
    s.send_started("m1")
    deliver(s, Ev(1, sender_id="alice", client_msg_id="m1"))
    assert s.close(revoked("bye")) == Close(CLOSE_REVOKED, "bye")
    assert s.close(TOO_SLOW) is None
    assert s.close_decision == Close(CLOSE_REVOKED, "bye")
    assert s.holding == 0 and deliver(s, Ev(2)) == []
    assert s.send_finished("m1", "ack:r1") == ["ack:r1"]  # the transport drops it: closed
    assert TOO_SLOW.code == 4008


def test_close_during_replay_drops_the_buffer() -> None:
    s: ServerSession[str] = ServerSession()
    s.authenticated("alice")
    deliver(s, Ev(1))
    s.close(TOO_SLOW)
    assert s.buffered == [] and s.end_replay() == []


# --- client: the shared vectors ----------------------------------------------------------


def outcome_json(outcome: Outcome | Ended) -> dict[str, object]:
    """An outcome in the vectors' language-neutral form (README.md beside them)."""
    match outcome:
        case Delivered():
            return {"type": "delivered", "position": outcome.position,
                    "out_of_order": outcome.out_of_order, "event": dict(outcome.event)}
        case Dropped():
            return {"type": "dropped", "position": outcome.position}
        case Ready():
            return {"type": "ready", "position": outcome.position}
        case Answered():
            return {"type": "answered", "ref": outcome.ref, "ok": outcome.ok,
                    "client_msg_id": outcome.client_msg_id}
        case Refused():
            return {"type": "refused", "code": outcome.code,
                    "next": None if outcome.next is None else outcome.next.value}
        case Signal():
            return {"type": "signal", "frame": dict(outcome.frame)}
        case ReconnectSoon():
            return {"type": "reconnect_soon"}
        case Ignored():
            return {"type": "ignored"}
        case Ended():
            return {"type": "ended", "next": outcome.next.value,
                    "unanswered": list(outcome.unanswered),
                    "unanswered_sends": list(outcome.unanswered_sends)}
    raise AssertionError(outcome)  # pragma: no cover - every outcome is matched above


def compare_outcome(expected: Mapping[str, object], actual: dict[str, object]) -> None:
    # `event` (delivered) and `frame` (signal) are compared only when the vector gives them
    for optional in ("event", "frame"):
        if optional not in expected:
            actual.pop(optional, None)
    assert actual == expected


ACTIONS = ("connect", "receive", "request", "give_up", "lost")


def run_vector(vector: Mapping[str, object]) -> None:
    since = vector["since"]
    assert since is None or isinstance(since, str)
    session = ClientSession(since)
    steps = vector["steps"]
    assert isinstance(steps, list)
    for i, step in enumerate(steps):
        where = f"step {i}: {json.dumps(step)}"
        (action,) = [a for a in ACTIONS if a in step]
        value = step[action]
        outcome: Outcome | Ended | None = None
        if action == "connect":
            session.connect(value)
        elif action == "receive":
            outcome = session.receive(value)
        elif action == "request":
            ref = session.request(value)
            if "ref" in step:
                assert ref == step["ref"], where
        elif action == "give_up":
            session.give_up(value)
        else:
            outcome = session.connection_lost(value)
        sent = [orjson.loads(text) for text in session.frames_to_send()]
        assert sent == step.get("sent", []), where
        if "outcome" in step:
            assert outcome is not None, where
            compare_outcome(step["outcome"], outcome_json(outcome))
        if "since" in step:
            assert session.since == step["since"], where
        if "pending" in step:
            assert session.pending == step["pending"], where
    end = vector.get("end", {})
    assert isinstance(end, dict)
    for counter, expected in end.items():
        assert getattr(session, counter) == expected, counter


def load_vectors() -> list[dict[str, object]]:
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert data["format"] == 1
    vectors: list[dict[str, object]] = data["vectors"]
    return vectors


@pytest.mark.parametrize("vector", load_vectors(), ids=lambda v: str(v["name"]))
def test_client_vector(vector: dict[str, object]) -> None:
    run_vector(vector)


def test_the_vectors_are_plain_json_with_known_keys() -> None:
    known = set(ACTIONS) | {"sent", "ref", "outcome", "since", "pending"}
    names = set()
    for vector in load_vectors():
        assert set(vector) <= {"name", "since", "steps", "end"}
        assert vector["name"] not in names
        names.add(vector["name"])
        for step in vector["steps"]:  # type: ignore[attr-defined]
            assert set(step) <= known, step
            assert len([a for a in ACTIONS if a in step]) == 1, step


def test_a_vector_that_expects_the_wrong_thing_fails() -> None:
    """The runner checks what it is told (a vector cannot pass by checking nothing)."""
    wrong = {
        "name": "wrong",
        "since": None,
        "steps": [{"connect": "tok", "sent": [{"type": "auth", "token": "tok", "since": "1"}]}],
    }
    with pytest.raises(AssertionError):
        run_vector(wrong)
    silent = {"name": "silent", "since": None, "steps": [{"connect": "tok"}]}
    with pytest.raises(AssertionError):
        run_vector(silent)  # it wrote an auth frame the step did not list


# --- client: what the vectors cannot reach ---------------------------------------------


def test_position_key() -> None:
    assert position_key("42") == 42
    assert position_key("a1") is None and position_key("-1") is None


def test_position_bookkeeping_drops_replays_but_never_loses() -> None:
    """(Moved from the SDK's tests: the stream's dedupe rule is this session's.)"""
    s = ClientSession("10")

    def accept(position: str) -> bool:
        outcome = s.receive({"type": "event", "position": position, "event": {}})
        return isinstance(outcome, Delivered)

    assert [accept(p) for p in ("11", "11", "10", "9", "13")] == [
        True,
        False,  # replayed
        False,  # at or below since
        False,
        True,
    ]
    assert accept("12") is True  # never seen: yielded, not lost
    assert s.out_of_order == 1
    assert accept("12") is False
    assert s.since == "13"  # resume from the highest position received


def test_old_integer_positions_fall_below_the_floor() -> None:
    s = ClientSession("0")
    s.RECENT = 3
    s.connect("tok")
    s.receive({"type": "ready", "position": "0"})
    for p in (5, 6, 7, 8):
        assert isinstance(s.receive({"type": "event", "position": str(p), "event": {}}), Delivered)
    # 5 was forgotten one by one and fell below the floor: still dropped, and 4 (never
    # seen, below the floor) is dropped too rather than delivered out of order
    assert s.receive({"type": "event", "position": "5", "event": {}}) == Dropped("5")
    assert s.receive({"type": "event", "position": "4", "event": {}}) == Dropped("4")
    assert s.out_of_order == 0 and s.duplicates == 2


def test_opaque_positions_are_remembered_up_to_a_limit() -> None:
    s = ClientSession()
    s.OPAQUE = 2
    s.connect("tok")
    s.receive({"type": "ready"})
    for p in ("a", "b", "c"):
        assert isinstance(s.receive({"type": "event", "position": p, "event": {}}), Delivered)
    assert s.receive({"type": "event", "position": "c", "event": {}}) == Dropped("c")
    # "a" was forgotten: a server that sent it again would be believed
    assert isinstance(s.receive({"type": "event", "position": "a", "event": {}}), Delivered)


def test_ready_carries_the_user() -> None:
    s = ClientSession()
    s.connect("tok")
    assert s.receive({"type": "ready", "position": "1", "user": {"id": "u1"}}) == Ready(
        "1", {"id": "u1"}
    )
    assert s.receive({"type": "ready", "position": "1", "user": "u1"}) == Ready("1", None)
    assert s.ready and s.connections == 2 and s.ready_position == "1"


def test_an_answer_carries_its_frame() -> None:
    s = ClientSession()
    s.connect("tok")
    s.receive({"type": "ready", "position": "1"})
    s.frames_to_send()
    ref = s.request({"type": "send", "client_msg_id": 7, "body": "x"})  # not a string id
    assert ref == "1"
    ack = {"type": "ack", "ref": "1", "message": {"seq": 1}}
    assert s.receive(ack) == Answered("1", True, ack, None)
    assert Next("resume_refused") is Next.RESUME_REFUSED


def test_an_idle_session_holds_no_set_of_its_own() -> None:
    """Empty-until-used: the sets of an idle connection are one shared empty set."""
    a, b = ServerSession[str](), ServerSession[str]()
    assert a.conversations is b.conversations is a.pending_sends is b.pending_sends
    assert a.join("c1") and a.join("c2")
    assert a.conversations == {"c1", "c2"} and not b.conversations
    assert a.leave("c1") and a.leave("c2") and not a.leave("c2")
    assert a.conversations is b.conversations
    a.send_started("m1")
    a.send_started("m2")
    assert a.pending_sends == {"m1", "m2"} and not b.pending_sends
    a.send_finished("m1", None)
    a.send_finished("m2", None)
    assert a.pending_sends is b.pending_sends


# --- coverage: CI fails when a branch of the module goes untested ----------------------


@pytest.mark.skipif(
    os.environ.get("TIDINGS_SESSION_COVERAGE_RUN") == "1", reason="the run being measured"
)
def test_the_session_module_is_fully_covered(tmp_path: Path) -> None:
    """Runs this file under pytest-cov in a child process (about a second) and fails
    unless every line and branch of protocol/session.py is covered."""
    env = {**os.environ, "TIDINGS_SESSION_COVERAGE_RUN": "1"}
    env["COVERAGE_FILE"] = str(tmp_path / "coverage")
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
            "-o", "addopts=", str(Path(__file__)),
            "--cov=tidings.protocol.session", "--cov-branch", "--cov-report=term-missing",
            "--cov-fail-under=100",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
