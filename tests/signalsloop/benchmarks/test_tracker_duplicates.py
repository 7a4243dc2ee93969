"""Scoring real trackers: the run without data, and the fused counter."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalsloop.benchmarks import tracker_duplicates


def test_without_the_variable_the_run_says_how_to_enable_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(tracker_duplicates.ENV, raising=False)
    report = tracker_duplicates.run(None, None)  # type: ignore[arg-type]  # nothing is touched when skipped
    assert tracker_duplicates.ENV in str(report["skipped"])
    monkeypatch.setenv(tracker_duplicates.ENV, str(tmp_path / "nope"))
    assert "is not a directory" in str(tracker_duplicates.run(None, None)["skipped"])  # type: ignore[arg-type]


def test_fused_hits_counts_a_pair_only_when_the_partner_is_in_the_top_k(db_url: str) -> None:
    """The one-line figures' counter: the same query finds its duplicate at
    k=1 and not an unrelated report, and a one-line export laid out by
    lead_as_title still finds it."""
    import psycopg

    from shared.analyzers.offline import OfflineAnalyzer
    from signalsloop.operations.hybrid import lead_as_title

    log = " ".join(f"at org.apache.hadoop.hdfs.BlockReceiver{i}.run(BlockReceiver.java:{i})" for i in range(30))
    reports = [f"NameNode crashes on restart\nNullPointerException in FSImage loading {log}",
               f"NPE when the NameNode restarts\nFSImage loading throws NullPointerException {log}",
               "Dark mode for the web UI\nThe web UI is too bright at night, please add a dark theme",
               "Typo in the quick start guide\nThe word configuration is misspelled twice on the page"]
    pairs = [(1, 0), (1, 2)]
    one_line = [lead_as_title(" ".join(t.split())) for t in reports]
    assert "\n" in one_line[0] and "\n" not in one_line[2]  # the long ones get a lead title
    analyzer = OfflineAnalyzer()
    with psycopg.connect(db_url) as conn:
        assert tracker_duplicates.fused_hits(conn, analyzer, reports, pairs, k=1) == 1
        assert tracker_duplicates.fused_hits(conn, analyzer, one_line, pairs, k=1) == 1
        assert tracker_duplicates.fused_hits(conn, analyzer, reports, pairs, k=3) == 2


def test_a_tracker_with_reports_outside_its_pairs_is_scored_again_on_its_pair_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The small-pool figures: the same pairs among their own reports only,
    pooled apart from the full trackers'. (Scoring itself needs scikit-learn
    for its baseline, a training extra, so here it only records what it is
    given; test_fused_hits above scores for real.)"""
    import csv

    from signalsloop.benchmarks.tracker_sources import Tracker

    for name, rows, pairs in (("demo", [["10", "Export crashes", "NPE"], ["11", "Crash on export", "NPE"],
                                        ["12", "Dark mode", "please"], ["13", "Typo", "guide"]], [["11", "10"]]),
                              ("small", [["1", "Slow", "search"], ["2", "Slow search", "again"]], [["2", "1"]])):
        folder = tmp_path / name
        folder.mkdir()
        with (folder / f"{name}_bugs.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["Issue id", "Summary", "Description"], *rows])
        with (folder / f"{name}_bugs-combined.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["Issue id", "Duplicate id"], *pairs])
    scored: list[Tracker] = []

    def score(conn: object, analyzer: object, tracker: Tracker) -> dict[str, object]:
        scored.append(tracker)
        return {"reports": len(tracker.texts), "pairs": len(tracker.pairs),
                "recall_at_5_fused": 1.0 if len(tracker.texts) == 2 else 0.0}

    monkeypatch.setattr(tracker_duplicates, "score_tracker", score)
    monkeypatch.setenv(tracker_duplicates.ENV, str(tmp_path))
    report = tracker_duplicates.run(None, None)  # type: ignore[arg-type]
    assert [(t.name, t.texts) for t in scored] == [
        ("demo", ["Export crashes\nNPE", "Crash on export\nNPE", "Dark mode\nplease", "Typo\nguide"]),
        ("demo", ["Export crashes\nNPE", "Crash on export\nNPE"]),
        ("small", ["Slow\nsearch", "Slow search\nagain"])]  # already only its pairs' reports: scored once
    assert report["demo"]["pair_reports_only"] == {"reports": 2, "pairs": 1, "recall_at_5_fused": 1.0}
    assert "pair_reports_only" not in report["small"]
    assert report["all_pairs"] == {"pairs": 2, "recall_at_5_fused": 0.5}
    assert report["all_pairs_pair_reports_only"] == {"pairs": 1, "recall_at_5_fused": 1.0}
