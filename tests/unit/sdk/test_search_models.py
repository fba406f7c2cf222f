"""The SDK's search models (issue 16): `SearchPage.from_json` reads the wire shape of
`GET /search` (/work/notes/SEARCH.md) and tolerates what a newer server may add or an
older one leave out."""

from __future__ import annotations

from tidings.sdk import SearchCount, SearchPage, SearchResult

BODY = "🚀 分布式数据库迁移方案"


def test_a_page_reads_results_highlights_cursor_and_counts() -> None:
    page = SearchPage.from_json(
        {
            "results": [
                {
                    "message": {
                        "id": "m1", "conversation_id": "c1", "seq": 7, "client_msg_id": "x",
                        "sender_id": "ann", "body": BODY, "attachments": [],
                        "created_at": "2026-12-01T08:00:00Z",
                    },
                    "highlights": [[5, 8]],
                    "score": 1.5,  # a field this SDK does not know
                }
            ],
            "next_cursor": "abc",
            "counts": [
                {"conversation_id": "c1", "count": 12},
                {"conversation_id": "c2", "count": 1},
            ],
            "counts_capped": True,
        }
    )
    assert page.next_cursor == "abc" and page.counts_capped is True
    assert page.counts == [
        SearchCount(conversation_id="c1", count=12),
        SearchCount(conversation_id="c2", count=1),
    ]
    [result] = page.results
    assert isinstance(result, SearchResult)
    assert result.message.seq == 7 and result.message.conversation_id == "c1"
    assert result.highlights == [(5, 8)]
    start, end = result.highlights[0]
    assert result.message.body[start:end] == "数据库"  # code points: Python's own indices


def test_the_last_page_and_missing_fields() -> None:
    page = SearchPage.from_json({"results": [], "next_cursor": None, "counts": []})
    assert page == SearchPage(results=[], next_cursor=None, counts=[], counts_capped=False)
    empty = SearchPage.from_json({})
    assert empty.results == [] and empty.next_cursor is None and empty.counts == []
    odd = SearchPage.from_json(
        {"results": [{"message": {"seq": 1}, "highlights": [[0, 1], [2], "x"]}, "junk"],
         "next_cursor": "", "counts": ["junk"]}
    )
    assert [r.highlights for r in odd.results] == [[(0, 1)]]
    assert odd.next_cursor is None and odd.counts == []
