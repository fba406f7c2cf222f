"""The corpus of `tidings bench search` (bench/searchgen.py): the same from the same
seed, exactly the sizes asked, senders who are members at that seq, and expected answers
that agree with the messages made."""

from __future__ import annotations

from tidings.bench.searchgen import PROBE_WORDS, Corpus


def test_same_seed_same_corpus() -> None:
    a = [(g.conv, g.seq, g.sender, g.body) for g in Corpus(3, 40, 20, 2_000).messages()]
    b = [(g.conv, g.seq, g.sender, g.body) for g in Corpus(3, 40, 20, 2_000).messages()]
    c = [(g.conv, g.seq, g.sender, g.body) for g in Corpus(4, 40, 20, 2_000).messages()]
    assert a == b
    assert a != c


def test_sizes_and_memberships() -> None:
    corpus = Corpus(5, 60, 50, 5_000)
    made = list(corpus.messages())
    assert len(made) == 5_000
    assert sum(c.messages for c in corpus.convs) == 5_000
    assert len(corpus.convs) == 50
    directs = [frozenset(m.user for m in c.members) for c in corpus.convs if c.kind == "direct"]
    assert len(directs) == len(set(directs))  # one direct conversation per pair
    assert any(c.leaves() for c in corpus.convs)  # some members leave: visibility matters
    for g in made:
        conv = corpus.convs[g.conv]
        limit = conv.limit_of(g.sender)
        assert limit != 0  # a member
        assert limit is None or g.seq <= limit  # who left sends nothing after
    for conv in corpus.convs:
        seqs = [g.seq for g in made if g.conv == conv.index]
        assert seqs == list(range(1, conv.messages + 1))


def test_text_mixes_chinese_and_english() -> None:
    bodies = [g.body for g in Corpus(6, 30, 10, 3_000).messages()]

    def has_cjk(s: str) -> bool:
        return any("\u4e00" <= ch <= "\u9fff" for ch in s)

    def has_latin(s: str) -> bool:
        return any("a" <= ch.lower() <= "z" for ch in s)

    assert sum(has_cjk(b) and not has_latin(b) for b in bodies) > 300
    assert sum(has_latin(b) and not has_cjk(b) for b in bodies) > 300
    assert sum(has_latin(b) and has_cjk(b) for b in bodies) > 300
    assert any("INC-" in b for b in bodies)
    assert any("10." in b for b in bodies)


def test_expected_counts_what_a_user_may_read() -> None:
    corpus = Corpus(7, 50, 30, 4_000)
    made = list(corpus.messages())
    terms = [*PROBE_WORDS, *corpus.markers["incident"][:20], *corpus.markers["code"][:10]]
    for user in range(0, 50, 7):
        for term in terms:
            want = sum(
                1
                for g in made
                if term.casefold() in g.body.casefold() and corpus.visible(user, g.conv, g.seq)
            )
            assert corpus.expected(term, user) == want, (user, term)
    conv = next(c for c in corpus.convs if c.leaves())
    left_seq, leaver = conv.leaves()[0]
    assert corpus.visible(leaver, conv.index, left_seq)
    assert not corpus.visible(leaver, conv.index, left_seq + 1)
    outsider = next(u for u in range(50) if conv.limit_of(u) == 0)
    assert not corpus.visible(outsider, conv.index, 1)


def test_edits_and_recalls_change_the_expected_answers() -> None:
    corpus = Corpus(8, 40, 20, 4_000)
    made = list(corpus.messages())
    picked = [(g, kind) for g in made if (kind := corpus.change_of(g, 40)) is not None]
    assert 10 <= len(picked) <= 120
    assert {kind for _, kind in picked} == {"edit", "recall"}
    for g, _ in picked:
        assert g.terms  # each carried a marker
        assert corpus.convs[g.conv].limit_of(g.sender) is None  # its sender stays
    (recalled, _), (edited, _) = (
        next(p for p in picked if p[1] == "recall"),
        next(p for p in picked if p[1] == "edit"),
    )
    member = next(iter(corpus.convs[recalled.conv].limits))
    term = recalled.terms[0]
    before = corpus.expected(term, member)
    corpus.recall(recalled)
    assert corpus.expected(term, member) == before - 1
    member = next(iter(corpus.convs[edited.conv].limits))
    old = edited.terms[0]
    before = corpus.expected(old, member)
    body = corpus.edit(edited)
    assert old not in body
    assert corpus.expected(old, member) == before - 1 + (old.casefold() in body.casefold())
    revision = corpus.markers["revision"][-1]
    assert revision in body and corpus.expected(revision, member) == 1
    assert corpus.old_markers[(edited.conv, edited.seq)] == edited.terms
