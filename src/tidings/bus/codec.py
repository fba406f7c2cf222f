"""Envelopes on the wire between nodes: a JSON header line, then the frame as is."""

from __future__ import annotations

import orjson

from tidings.bus.ports import Envelope, EnvelopeKind


def encode_envelope(envelope: Envelope) -> bytes:
    header = {
        "k": envelope.kind.value,
        "p": envelope.position,
        "c": envelope.conversation_id,
        "s": envelope.sender_id,
        "m": envelope.client_msg_id,
        "a": list(envelope.added_user_ids),
        "r": envelope.removed_user_id,
        "u": envelope.user_id,
        "t": envelope.token_id,
        "why": envelope.reason,
    }
    # written only when set (rare): every message's header stays as it was
    if envelope.about_seq is not None:
        header["q"] = envelope.about_seq
    if envelope.first_seq != 1:
        header["f"] = envelope.first_seq
    return orjson.dumps(header) + b"\n" + envelope.frame.encode()


def decode_envelope(data: bytes) -> Envelope:
    head, _, frame = data.partition(b"\n")
    h = orjson.loads(head)
    return Envelope(
        kind=EnvelopeKind(h["k"]),
        frame=frame.decode(),
        position=h["p"],
        conversation_id=h["c"],
        sender_id=h["s"],
        client_msg_id=h["m"],
        added_user_ids=tuple(h["a"]),
        removed_user_id=h["r"],
        user_id=h["u"],
        token_id=h["t"],
        reason=h["why"],
        about_seq=h.get("q"),
        first_seq=h.get("f", 1),
    )
