"""The lab chunker: the join invariant for any text (hypothesis) and each rule of the policy."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engines.chunking import (
    CLOSERS,
    NO_SPACE_MARKS,
    ChunkingSettings,
    CutKind,
    _joins_cluster,
    chunk_text,
    normalize_for_chunking,
)
from engines.errors import InputError

#: Words from several scripts, emoji (with ZWJ, skin tones, flags), combining accents and punctuation.
PIECES = st.sampled_from([
    "the", "quick", "Ärger", "naïve", "e\u0301", "Привет", "мир", "你好", "世界", "こんにちは", "مرحبا",
    "שלום", "नमस्ते", "👍", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷🇩🇪", "a" * 70, "x" * 400, "3.5",
    ",", ".", "!", "?", ";", ":", "—", "…", "。", "，", "、", "！", "\"", "'", ")", "」",
    " ", "  ", "\n", "\t", " , ", " . ",
])
MIXED_TEXT = st.lists(PIECES, max_size=120).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=600), MIXED_TEXT)
SETTINGS = st.builds(
    lambda first, max_chars, min_frac, after: ChunkingSettings(
        first_chunk_max_chars=first, max_chars=max_chars, min_chars=int(max_chars * min_frac),  # above max: capped
        sentence_only_after_s=after,
    ),
    st.integers(1, 80), st.integers(1, 200), st.floats(0, 1.5), st.floats(0, 20),
)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, SETTINGS)
def test_chunks_join_back_to_the_normalised_text_exactly(text: str, chunking: ChunkingSettings) -> None:
    plan = chunk_text(text, chunking)
    assert plan.normalized_text == normalize_for_chunking(text)
    assert "".join(plan.chunks) == plan.normalized_text  # nothing lost, nothing twice
    assert all(plan.chunks)  # no empty chunk, so no overlap can hide in one
    assert not any(chunk.startswith(" ") for chunk in plan.chunks)
    assert len(plan.cut_kinds) == len(plan.chunks)
    assert len(plan.warnings) == len(plan.unpunctuated)
    # Never longer than the hard limit (the first chunk may keep a whole long first word up to it).
    hard = chunking.hard_max_chars
    limits = [max(chunking.first_chunk_max_chars, hard)] + [hard] * max(len(plan.chunks) - 1, 0)
    for chunk, limit in zip(plan.chunks, limits, strict=False):
        body = chunk.rstrip(" ")  # the separating spaces ride at the end of the chunk they follow
        if len(body) > limit:  # only one grapheme cluster longer than the limit may pass it
            assert all(_joins_cluster(body, pos) for pos in range(1, len(body))), chunk


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, SETTINGS)
@example('000。"0', ChunkingSettings(first_chunk_max_chars=1, max_chars=1))  # a closer cut off its mark
def test_cuts_fall_between_words_unless_a_word_is_too_long(text: str, chunking: ChunkingSettings) -> None:
    plan = chunk_text(text, chunking)
    for index, (chunk, following, kind) in enumerate(zip(plan.chunks, plan.chunks[1:], plan.cut_kinds,
                                                         strict=False)):
        if kind == CutKind.HARD:
            # Even a forced cut keeps grapheme clusters (accents, ZWJ emoji) whole.
            assert not unicodedata.combining(following[0]) and following[0] != "\u200d"
            assert chunk[-1] != "\u200d"
            continue
        # The text before the cut, not the chunk alone: a hard cut may have left a closing quote on its own
        # ('0。' | '"' | '0' at one character per chunk), and the cut after it still follows the mark.
        before = "".join(plan.chunks[:index + 1])
        last = before.rstrip("".join(CLOSERS))[-1:] if chunk[-1] != " " else " "
        assert chunk.endswith(" ") or last in NO_SPACE_MARKS, (chunk, following)


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_for_chunking(text)
    assert normalize_for_chunking(once) == once
    assert "  " not in once and once == once.strip()


def test_empty_and_blank_text_give_no_chunks() -> None:
    for text in ("", "   ", "\n\t "):
        plan = chunk_text(text)
        assert plan.chunks == () and plan.normalized_text == "" and plan.warnings == ()


def test_first_chunk_ends_at_the_first_comma_within_the_limit() -> None:
    plan = chunk_text("Well, that was quick. Now the rest of the text follows here.")
    assert plan.chunks[0] == "Well, "
    assert plan.cut_kinds[0] == CutKind.CLAUSE


def test_first_chunk_never_exceeds_its_limit_nor_cuts_a_word() -> None:
    plan = chunk_text("Streaming speech synthesis needs a short first chunk, then longer ones.",
                      ChunkingSettings(first_chunk_max_chars=20))
    assert plan.chunks[0] == "Streaming speech "  # 17 chars; "synthesis" would pass 20
    assert plan.cut_kinds[0] == CutKind.WORD
    assert plan.warnings and "chunk 0 ends without punctuation" in plan.warnings[0]


def test_first_word_longer_than_the_limit_is_kept_whole() -> None:
    plan = chunk_text("Incomprehensibilities abound, they say.", ChunkingSettings(first_chunk_max_chars=5))
    assert plan.chunks[0] == "Incomprehensibilities "  # the whole word, and no more
    assert plan.unpunctuated == (0,)


def test_later_chunks_search_back_for_punctuation() -> None:
    text = "First, " + "one two three four five, six seven eight nine ten eleven twelve thirteen fourteen"
    plan = chunk_text(text, ChunkingSettings(max_chars=60, min_chars=10, sentence_only_after_s=100))
    # The comma at 24 chars is within 60: cut there rather than at the last word that fits.
    assert plan.chunks[1] == "one two three four five, "
    assert plan.cut_kinds[1] == CutKind.CLAUSE


def test_later_chunks_search_forward_up_to_twice_the_limit() -> None:
    tail = "word " * 15 + "end, " + "more " * 30
    plan = chunk_text("Go. " + tail, ChunkingSettings(max_chars=50, sentence_only_after_s=100))
    assert plan.chunks[1] == "word " * 15 + "end, "  # 80 chars: the comma lies past 50, before 100
    assert plan.cut_kinds[1] == CutKind.CLAUSE


def test_no_punctuation_in_reach_cuts_at_a_word_and_warns() -> None:
    plan = chunk_text("Go. " + "word " * 60, ChunkingSettings(max_chars=50, sentence_only_after_s=100))
    assert plan.cut_kinds[1] == CutKind.WORD and len(plan.chunks[1]) <= 50
    assert plan.chunks[1].endswith("word ")
    assert any(w.startswith("chunk 1 ends without punctuation") for w in plan.warnings)


def test_a_word_longer_than_twice_the_limit_is_cut_hard_and_warned() -> None:
    plan = chunk_text("Go. " + "z" * 250, ChunkingSettings(max_chars=50))
    assert plan.cut_kinds[1] == CutKind.HARD and len(plan.chunks[1]) == 100
    assert any("cuts a word longer than 100" in w for w in plan.warnings)


def test_after_the_sentence_only_threshold_cuts_land_on_sentence_ends() -> None:
    sentence = "This clause has a comma, and then it ends. "
    text = sentence * 8
    # 15 chars/s: 75 chars is 5 s of speech, so from the third chunk on only sentence ends count.
    plan = chunk_text(text, ChunkingSettings(max_chars=60, min_chars=5))
    assert plan.sentence_only_from is not None
    later = plan.cut_kinds[plan.sentence_only_from:]
    assert later and all(kind == CutKind.SENTENCE for kind in later)
    assert CutKind.CLAUSE in plan.cut_kinds[: plan.sentence_only_from]  # commas were used before


def test_cjk_text_without_spaces_is_cut_after_its_punctuation() -> None:
    plan = chunk_text("你好，世界。这是一个测试。", ChunkingSettings(first_chunk_max_chars=5))
    assert plan.chunks[0] == "你好，"
    assert "".join(plan.chunks) == plan.normalized_text


def test_punctuation_is_normalised_before_cutting() -> None:
    plan = chunk_text("Hello ,  “world” .  Next")
    assert plan.normalized_text == 'Hello, "world". Next'


@pytest.mark.parametrize(
    "field, value",
    [("first_chunk_max_chars", 0), ("max_chars", 0), ("min_chars", -1),
     ("chars_per_second", 0.0), ("sentence_only_after_s", -1.0)],
)
def test_bad_settings_are_input_errors(field: str, value: object) -> None:
    with pytest.raises(InputError, match=field):
        ChunkingSettings(**{field: value})
