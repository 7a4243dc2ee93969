"""Per-project settings are checked where agents read them; each bad key is named."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import InvalidSettings
from shared.project_settings import check_project_settings


@pytest.mark.parametrize(("settings", "bad"), [
    ({"duplicate_threshold": "abc"}, "duplicate_threshold"),
    ({"duplicate_threshold": 1.5}, "duplicate_threshold"),
    ({"theme_threshold": "20"}, "theme_threshold"),
    ({"theme_threshold": 0}, "theme_threshold"),
    ({"slack_rate_per_minute": -1}, "slack_rate_per_minute"),
    ({"notify_min_importance": "loud"}, "notify_min_importance"),
])
def test_bad_values_are_named(settings: dict[str, Any], bad: str) -> None:
    with pytest.raises(InvalidSettings, match=bad):
        check_project_settings(settings)


def test_good_values_and_unknown_keys_pass() -> None:
    settings = {"duplicate_threshold": 1, "theme_threshold": 5, "brand_color": "teal"}
    assert check_project_settings(settings) == {"duplicate_threshold": 1.0, "theme_threshold": 5,
                                                "brand_color": "teal"}
