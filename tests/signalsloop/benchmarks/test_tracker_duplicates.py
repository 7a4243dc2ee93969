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
