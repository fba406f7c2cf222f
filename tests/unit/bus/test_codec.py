"""bus/codec.py: envelopes between nodes (the Redis bus) read back to the same value."""

from __future__ import annotations

import orjson

from tidings.bus.codec import decode_envelope, encode_envelope
from tidings.bus.ports import Envelope, EnvelopeKind

MESSAGE = Envelope(
    kind=EnvelopeKind.EVENT,
    frame='{"type":"event","x":"中文"}',
    position=7,
    conversation_id="c1",
    sender_id="u1",
    client_msg_id="m1",
)


def header(envelope: Envelope) -> dict[str, object]:
    head, _, _ = encode_envelope(envelope).partition(b"\n")
    loaded: dict[str, object] = orjson.loads(head)
    return loaded


def test_an_event_about_an_older_message_and_a_late_members_first_seq_cross_nodes() -> None:
    """History not shared with members added later (issue 17): every node's fan-out
    needs the seq an event is about and the first seq of the members it adds."""
    edit = Envelope(kind=EnvelopeKind.EVENT, frame="{}", position=8, conversation_id="c1",
                    about_seq=3)
    added = Envelope(kind=EnvelopeKind.EVENT, frame="{}", position=9, conversation_id="c1",
                     added_user_ids=("u2",), first_seq=12)
    for envelope in (MESSAGE, edit, added):
        assert decode_envelope(encode_envelope(envelope)) == envelope
    assert (header(edit)["q"], header(added)["f"]) == (3, 12)


def test_a_message_header_is_as_before_and_an_older_nodes_header_reads() -> None:
    """Written only when set: a message's header carries neither key, and a header
    without them (a node of the previous release) reads as about nothing, first seq 1."""
    head = header(MESSAGE)
    assert "q" not in head and "f" not in head
    decoded = decode_envelope(orjson.dumps(head) + b"\n" + MESSAGE.frame.encode())
    assert (decoded.about_seq, decoded.first_seq) == (None, 1)
    assert decoded == MESSAGE
