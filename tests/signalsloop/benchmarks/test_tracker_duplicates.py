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
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The small-pool figures: the same pairs among their own reports only,
    pooled apart from the full trackers'."""
    import csv

    import psycopg

    from shared.analyzers.offline import OfflineAnalyzer

    folder = tmp_path / "demo"
    folder.mkdir()
    reports = [["10", "Export crashes", "CsvWriter.flush throws NPE"], ["11", "Crash on export", "NPE in flush"],
               ["12", "Dark mode", "please add a dark theme"], ["13", "Typo", "misspelled word in the guide"]]
    with (folder / "Demo_bugs.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["Issue id", "Summary", "Description"], *reports])
    with (folder / "Demo_bugs-combined.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["Issue id", "Duplicate id"], ["11", "10"]])
    monkeypatch.setenv(tracker_duplicates.ENV, str(tmp_path))
    with psycopg.connect(db_url) as conn:
        report = tracker_duplicates.run(conn, OfflineAnalyzer())
    demo = report["demo"]
    assert (demo["reports"], demo["pairs"]) == (4, 1)
    assert (demo["pair_reports_only"]["reports"], demo["pair_reports_only"]["pairs"]) == (2, 1)
    assert demo["pair_reports_only"]["recall_at_5_fused"] == 1.0, "two reports: the partner is the only candidate"
    assert report["all_pairs_pair_reports_only"]["pairs"] == 1 and report["all_pairs"]["pairs"] == 1
