"""Reading the human-rated texts from the vaderSentiment sdist: labels by the
raters' plurality, texts joined to their ratings, and a file that is not the
pinned sdist refused (no network: the sdist is given by path)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from shared.errors import ConfigurationError
from signalsloop.benchmarks import vader_ratings


def test_a_label_is_the_raters_plurality_and_a_tie_is_neutral() -> None:
    assert vader_ratings.plurality([-2, -1, 0, 3]) == 0
    assert vader_ratings.plurality([1, 2, 0, -1, 4]) == 2
    assert vader_ratings.plurality([0, 0, 1, -1]) == 1
    assert vader_ratings.plurality([-1, 1]) == 1  # tie between the two sides
    assert vader_ratings.plurality([2, 2, 0, 0]) == 1  # tie with neutral


def test_texts_are_joined_to_their_ratings_by_id() -> None:
    truth = "1\t2.5\tLove it\r\n2\t-1.0\tmeh, broke again\r\n3\t0.0\t\r\n"
    ratings = "2\t-1.0\t0.8\t[-1, -2, 0]\r\n1\t2.5\t0.5\t[2, 3, 3]\r\n9\t0.0\t0.0\t[0]\r\n"
    texts, labels = vader_ratings.parse(truth, ratings)
    assert texts == ["meh, broke again", "Love it"]  # in the ratings' order; unknown or empty ids dropped
    assert labels.tolist() == [0, 2] and labels.dtype == np.int64


def test_a_file_that_is_not_the_pinned_sdist_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / vader_ratings.SDIST
    with tarfile.open(fake, "w:gz") as tar:
        info = tarfile.TarInfo("x.txt")
        tar.addfile(info, io.BytesIO(b""))
    monkeypatch.setenv("SIGNALSLOOP_VADER_SDIST", str(fake))
    with pytest.raises(ConfigurationError, match="SHA-256"):
        vader_ratings.load()
