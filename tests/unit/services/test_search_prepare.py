"""Index jobs segment messages before their write transaction (services/search.py:
index_messages): the write transaction reads the messages again and keeps a prepared
document only when the message is still the one it was made from, so an edit or a
recall between the two never leaves its old text in the index."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from tidings.core.models import ConversationId, Message, MessageId, UserId
from tidings.search.text import query_tokens
from tidings.services.search import _prepare, _split, doc_of

KEY = ("c1", 7)


def message(body: str) -> Message:
    return Message(
        id=MessageId("m7"),
        conversation_id=ConversationId("c1"),
        seq=7,
        client_msg_id="x",
        sender_id=UserId("u1"),
        body=body,
        reply_to_seq=None,
        mentions=(),
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_a_prepared_document_is_used_when_the_message_is_unchanged() -> None:
    before = message("分布式数据库迁移方案")
    prepared = _prepare({KEY: before})
    docs, gone = _split({KEY: before}, [KEY], prepared)
    assert gone == [] and docs == [prepared[KEY][1]]
    assert docs[0] is prepared[KEY][1]  # not segmented again
    # reactions do not change the document: still the prepared one
    docs, _ = _split({KEY: replace(before, reactions={"👍": [UserId("u2")]})}, [KEY], prepared)
    assert docs[0] is prepared[KEY][1]


def test_an_edit_between_prepare_and_write_is_indexed_by_its_new_text() -> None:
    prepared = _prepare({KEY: message("old words about redis")})
    edited = replace(message("新的内容 about postgres"), edited_at=datetime.now(UTC))
    docs, gone = _split({KEY: edited}, [KEY], prepared)
    assert gone == [] and docs == [doc_of(edited)]
    tokens = set(docs[0].tokens)
    assert not set(query_tokens("redis")) <= tokens
    assert set(query_tokens("postgres")) <= tokens and set(query_tokens("内容")) <= tokens


def test_a_recall_or_a_vanished_message_between_them_removes_the_document() -> None:
    prepared = _prepare({KEY: message("to be recalled")})
    docs, gone = _split({KEY: replace(message("to be recalled"), deleted=True)}, [KEY], prepared)
    assert docs == [] and gone == [KEY]
    docs, gone = _split({}, [KEY], prepared)
    assert docs == [] and gone == [KEY]
