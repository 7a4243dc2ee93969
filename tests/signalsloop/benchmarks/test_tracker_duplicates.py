"""Reading real tracker exports (GitBugs' layout) into duplicate-search queries."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from signalsloop.benchmarks import tracker_duplicates


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def _project(root: Path, name: str, reports: list[list[str]], pairs: list[list[str]] | None) -> None:
    folder = root / name.lower()
    folder.mkdir()
    _write(folder / f"{name}_bugs.csv", ["Summary", "Issue id", "Status", "Description"], reports)
    if pairs is not None:
        _write(folder / f"{name}_bugs-combined.csv", ["Issue id", "Duplicate id"], pairs)


def test_pairs_are_read_once_later_report_first_and_only_when_both_reports_exist(tmp_path: Path) -> None:
    reports = [["Crash on save", "10", "Closed", "NPE in Writer"], ["Save crashes", "11", "Closed", "same NPE"],
               ["Saving fails", "12", "Closed", "trace attached"], ["Slow search", "13", "Open", ""]]
    # 11 lists two duplicates (10 and 12); 10 -> 11 repeats 11 -> 10; 99 is not in the export; 13 -> 13 is no pair.
    _project(tmp_path, "Demo", reports, [["11", "10, 12"], ["10", "11"], ["13", "99"], ["13", "13"]])
    _project(tmp_path, "OnlyReports", reports, None)  # no pair file: not a tracker to score
    found = tracker_duplicates.trackers(tmp_path)
    assert [t.name for t in found] == ["demo"]
    demo = found[0]
    assert demo.texts[0] == "Crash on save\nNPE in Writer"
    assert demo.pairs == [(1, 0), (2, 1)]  # (query: the later report, the earlier one it should find)


def test_without_the_variable_the_run_says_how_to_enable_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(tracker_duplicates.ENV, raising=False)
    report = tracker_duplicates.run(None, None)  # type: ignore[arg-type]  # nothing is touched when skipped
    assert tracker_duplicates.ENV in str(report["skipped"])
    monkeypatch.setenv(tracker_duplicates.ENV, str(tmp_path / "nope"))
    assert "is not a directory" in str(tracker_duplicates.run(None, None)["skipped"])  # type: ignore[arg-type]


def test_pair_tables_give_each_report_once_with_its_text_unlisted(tmp_path: Path) -> None:
    folder = tmp_path / "Demo_Pair"
    folder.mkdir()
    header = ["", "Bug ID", "Duplicate_Bug_Ids", "Average_Cos_Similarity_Trigram",
              "Summary1", "description1", "summary2", "description2", "is_similar"]
    crash, save, slow = ("['Crash on save']", "['npe in writer']"), ("['Save crashes']", "['same npe']"), \
        ("['Slow export']", "['takes minutes']")
    # Read in file-name order: the dissimilar table first. It repeats the first pair the other way round.
    _write(folder / "Demo_textually_dissimilar_pair.csv", header, [["0", "10", "20.0", "0.4", *save, *crash, "1"]])
    _write(folder / "Demo_textually_similar_pair.csv", header,
           [["0", "20", "10.0", "0.4", *crash, *save, "1"], ["1", "30", "10.0", "0.1", *slow, *save, "1"]])
    [demo] = tracker_duplicates.trackers(tmp_path)
    assert demo.texts == ["Save crashes\nsame npe", "Crash on save\nnpe in writer", "Slow export\ntakes minutes"]
    assert demo.pairs == [(1, 0), (2, 0)]  # 20 and 30 each look for 10, whose id came as "10" and "10.0"


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
