"""Offline competitive rules: switching intent and competitor features, in
several languages, read from the sentence that mentions the competitor."""

from __future__ import annotations

import pytest

from shared.analyzers.offline import OfflineAnalyzer
from shared.analyzers.offline_competitive import MODEL_NAME, features, switching_intent
from shared.mentions import find_mentions


@pytest.mark.parametrize(
    ("sentence", "competitor", "intent"),
    [
        pytest.param("We are considering switching to Asana because of this.", "Asana", True, id="considering"),
        pytest.param("We switched over to Asana last week.", "Asana", True, id="switched over to"),
        pytest.param("I'll cancel and go with Asana.", "Asana", True, id="cancel and go with"),
        pytest.param("We moved from Asana to you and love it.", "Asana", False, id="moving away from it"),
        pytest.param("Asana is fine, I guess.", "Asana", False, id="a plain mention"),
        pytest.param("Asana? We are switching to something else.", "Asana", False, id="the cue after the name"),
        pytest.param("On va passer à Asana le mois prochain.", "Asana", True, id="French"),
        pytest.param("Wir wechseln zu Trello, wenn das so bleibt.", "Trello", True, id="German"),
        pytest.param("Nos vamos a cambiar a Notion pronto.", "Notion", True, id="Spanish"),
        pytest.param("Vamos mudar para o Notion.", "Notion", True, id="Portuguese"),
        pytest.param("We are SWITCHING TO NOTIÓN.", "Notion", True, id="case and accents"),
    ],
)
def test_switching_intent(sentence: str, competitor: str, intent: bool) -> None:
    assert switching_intent(sentence, competitor) is intent


@pytest.mark.parametrize(
    ("sentence", "competitor", "expected"),
    [
        pytest.param("Notion has offline mode and it is great.", "Notion", ["offline mode"], id="has"),
        pytest.param("Asana offers a timeline view, which we need.", "Asana", ["timeline view"], id="offers a"),
        pytest.param("I want a Gantt chart like Asana.", "Asana", ["Gantt chart"], id="like X"),
        pytest.param("Trello's power-ups are nice.", "Trello", [], id="possessive without a verb"),
        pytest.param("Asana has no timeline either.", "Asana", [], id="negated"),
        pytest.param("Notion tiene modo sin conexión.", "Notion", ["modo sin conexión"], id="Spanish, accents kept"),
        pytest.param("Trello hat eine bessere Kanban-Ansicht.", "Trello", ["bessere Kanban-Ansicht"], id="German"),
        pytest.param("Asana, qui propose une vue chronologique.", "Asana", ["vue chronologique"], id="French"),
        pytest.param("Switching to Asana because Tidewater has no Gantt view.", "Asana", [], id="ours, not theirs"),
    ],
)
def test_features(sentence: str, competitor: str, expected: list[str]) -> None:
    assert features(sentence, competitor) == expected


def test_the_offline_analyzer_gives_one_signal_per_mention_with_its_model() -> None:
    catalogue = [{"id": "a", "name": "Asana", "aliases": [], "domains": []},
                 {"id": "n", "name": "Notion", "aliases": [], "domains": ["notion.so"]}]
    text = "Notion is great. We are switching to Asana because Asana has a timeline view and we hate the bugs."
    mentions = find_mentions(text, catalogue)
    signals = OfflineAnalyzer().competitor_signals(text, mentions)
    assert [(s.competitor, s.switching_intent, s.features) for s in signals] == [
        ("Notion", False, []), ("Asana", True, ["timeline view"])]
    assert signals[0].sentiment == "positive" and signals[1].sentiment == "negative"
    assert {s.model for s in signals} == {MODEL_NAME}
    assert OfflineAnalyzer().competitor_signals(text, []) == []


def test_every_sentence_naming_the_competitor_by_any_of_its_names_counts() -> None:
    catalogue = [{"id": "a", "name": "Asana", "aliases": ["Asana Work Management"], "domains": ["asana.com"]}]
    text = ("Our lead says asana.com does this better and we may move to Asana next quarter. "
            "Unrelated sentence. Asana Work Management offers a timeline view with dependencies.")
    [mention] = find_mentions(text, catalogue)
    assert mention.matched == "asana.com" and mention.quote.startswith("Our lead says")
    [signal] = OfflineAnalyzer().competitor_signals(text, [mention])
    assert signal.switching_intent is True and signal.features == ["timeline view"]
