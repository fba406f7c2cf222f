"""Client frames: parsed and validated here, without IO."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tidings.core.errors import FieldError, InvalidRequest, TooLarge
from tidings.core.models import MAX_STORED_INT

Ref = str | int | float | None


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)
    ref: Ref = None


class AuthFrame(_Frame):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=512)
    since: str | None = None


class SendFrame(_Frame):
    type: Literal["send"]
    conversation_id: str = Field(min_length=1, max_length=64)
    client_msg_id: str
    body: str
    reply_to_seq: int | None = Field(default=None, ge=1, le=MAX_STORED_INT)
    # ids of the sender's uploads (POST /files); the count is bounded by the setting
    # max_attachments_per_message in the service, the list's length here
    attachments: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=100
    )
    # a reply in the thread of this root; also shown in the main timeline (issue 17)
    thread_root_seq: int | None = Field(default=None, ge=1, le=MAX_STORED_INT)
    also_to_conversation: bool = False


class ReadFrame(_Frame):
    type: Literal["read"]
    conversation_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0, le=MAX_STORED_INT)


class TypingFrame(_Frame):
    type: Literal["typing"]
    conversation_id: str = Field(min_length=1, max_length=64)


class PresenceFrame(_Frame):
    type: Literal["presence"]
    state: Literal["online", "away"]


class PingFrame(_Frame):
    type: Literal["ping"]


class CommandFrame(_Frame):
    """A slash command: `/command text` in a conversation (docs/integrations.md)."""

    type: Literal["command"]
    conversation_id: str = Field(min_length=1, max_length=64)
    command: str = Field(min_length=1, max_length=40)
    text: str = Field(default="", max_length=4000)


ClientFrame = Annotated[
    AuthFrame | SendFrame | ReadFrame | TypingFrame | PresenceFrame | PingFrame | CommandFrame,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def parse_frame(text: str | bytes, max_bytes: int) -> ClientFrame:
    """Parse one client frame or raise InvalidRequest / TooLarge (with the ref if known)."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > max_bytes:
        raise TooLarge(
            f"frame is {size} bytes, more than the limit of {max_bytes}", limit=max_bytes
        )
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("frame is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("frame must be a JSON object")
    ref = data.get("ref")
    if not isinstance(ref, (str, int, float)) or isinstance(ref, bool):
        ref = None
    if "\x00" in (text if isinstance(text, str) else text.decode("utf-8", "replace")) or any(
        isinstance(v, str) and "\x00" in v for v in data.values()
    ):
        raise InvalidRequest("frame must not contain NUL characters", ref=ref)
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        errors: list[FieldError] = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidRequest("invalid frame", errors=errors, ref=ref) from exc
