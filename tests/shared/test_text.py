from __future__ import annotations

import json

import pytest

from shared.text import clean_text, is_utf8, is_valid_unicode


def test_nul_is_dropped() -> None:
    assert clean_text("crash on save\x00 with NPE\x00") == "crash on save with NPE"


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    cut = json.loads('"lost my bag \\ud83d"')  # a tweet cut inside an emoji
    assert not is_valid_unicode(cut)
    cleaned = clean_text(cut)
    assert cleaned == "lost my bag \ufffd"
    assert is_valid_unicode(cleaned)
    cleaned.encode("utf-8")


def test_a_pair_written_as_two_code_points_becomes_one() -> None:
    assert clean_text("ok \ud83d\ude00") == "ok \U0001f600"


@pytest.mark.parametrize("text", ["", "plain", "naïve café 😀", "tab\tand\nnewline", "\u2028"])
def test_valid_text_is_returned_unchanged(text: str) -> None:
    assert is_valid_unicode(text)
    assert clean_text(text) == text


def test_is_utf8() -> None:
    assert is_utf8("café 😀".encode())
    assert not is_utf8(b"caf\xe9") and not is_utf8('"hi"'.encode("utf-16"))
