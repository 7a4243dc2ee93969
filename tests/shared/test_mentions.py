"""Competitor mentions: word boundaries, case and accents, aliases, domains,
non-English text, and quotes taken from the original text."""

from __future__ import annotations

import pytest

from shared.mentions import find_mentions, fold, quote_at

CATALOGUE = [
    {"id": "n", "name": "Notion", "aliases": ["Notion HQ"], "domains": ["notion.so"]},
    {"id": "a", "name": "Asana", "aliases": [], "domains": ["www.asana.com"]},
    {"id": "m", "name": "Monday.com", "aliases": ["monday"], "domains": ["monday.com"]},
    {"id": "t", "name": "Trello", "aliases": ["Tréllo Boards"], "domains": []},
    {"id": "c", "name": "C++", "aliases": [], "domains": []},
    {"id": "l", "name": "Linear", "aliases": [], "domains": ["lnr.so"]},
    {"id": "z", "name": "Zoë", "aliases": ["Zoe App"], "domains": []},
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Great promotion of the product", [], id="notion inside promotion"),
        pytest.param("emotional notions aside", [], id="notions is another word"),
        pytest.param("Asanas and yoga", [], id="asanas is another word"),
        pytest.param("Notion is better", [("Notion", "Notion")], id="the name"),
        pytest.param("NOTION is better", [("Notion", "NOTION")], id="upper case"),
        pytest.param("notión does this", [("Notion", "notión")], id="an accent in the text"),
        pytest.param("I tried zoe yesterday", [("Zoë", "zoe")], id="an accent in the catalogue"),
        pytest.param("we use Zoe   App", [("Zoë", "Zoe   App")], id="an alias spread over spaces"),
        pytest.param("Notion HQ answered", [("Notion", "Notion HQ")], id="the longest alias wins"),
        pytest.param("see https://www.notion.so/page", [("Notion", "www.notion.so")], id="a domain in a URL"),
        pytest.param("mail me at bob@team.notion.so.", [("Notion", "team.notion.so")], id="a subdomain in an e-mail"),
        pytest.param("visit lnr.so.evil.example", [], id="a domain inside another domain"),
        pytest.param("visit LNR.SO today", [("Linear", "LNR.SO")], id="a domain alone"),
        pytest.param("moved from monday.com", [("Monday.com", "monday.com")], id="a name with a dot"),
        pytest.param("mondays are hard", [], id="mondays is another word"),
        pytest.param("Monday was hard", [("Monday.com", "Monday")], id="an alias"),
        pytest.param("we write C++ all day", [("C++", "C++")], id="a name ending in symbols"),
        pytest.param("Tréllo boards oder Asana?", [("Trello", "Tréllo boards"), ("Asana", "Asana")],
                     id="two competitors in text order"),
        pytest.param("Wir wechseln zu Trello.", [("Trello", "Trello")], id="German"),
        pytest.param("ノーションより Asana が好き", [("Asana", "Asana")], id="Japanese around the name"),
        pytest.param("Asana, Asana and asana", [("Asana", "Asana")], id="once per competitor"),
        pytest.param("", [], id="empty text"),
    ],
)
def test_mentions(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(m.name, m.matched) for m in find_mentions(text, CATALOGUE)] == expected


def test_offsets_and_quotes_point_into_the_original_text() -> None:
    text = "Straße works. But we are moving to NOTIÓN because it has offline mode! Bye."
    [m] = find_mentions(text, CATALOGUE)
    assert text[m.start:m.end] == "NOTIÓN"
    assert m.quote == "But we are moving to NOTIÓN because it has offline mode!"


def test_fold_maps_every_character_back() -> None:
    folded, origin = fold("Straße Ü")
    assert folded == "strasse u" and len(origin) == len(folded) and origin[4] == origin[5] == 4


def test_a_long_sentence_is_clipped_around_the_mention() -> None:
    text = "word " * 200 + "Asana " + "word " * 200
    quote = quote_at(text, 1000, 1005, limit=100)
    assert len(quote) <= 101 and "Asana" in quote and quote.endswith("…")


def test_a_catalogue_row_without_terms_matches_nothing() -> None:
    assert find_mentions("anything at all", [{"id": "x", "name": " ", "aliases": [""], "domains": [""]}]) == []


def test_a_null_alias_or_domain_is_no_name() -> None:
    """A NULL entry (rows stored before the catalogue's check) was read as the word "None"."""
    row = {"id": "r", "name": "Rival", "aliases": [None], "domains": [None]}
    assert find_mentions("none of this works", [row]) == []
    assert [m.name for m in find_mentions("Rival works", [row])] == ["Rival"]
