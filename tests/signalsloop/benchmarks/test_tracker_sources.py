"""Reading real tracker exports, in each layout they are published in,
into duplicate-search queries."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from signalsloop.benchmarks import tracker_sources


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
    found = tracker_sources.trackers(tmp_path)
    assert [t.name for t in found] == ["demo"]
    demo = found[0]
    assert demo.texts[0] == "Crash on save\nNPE in Writer"
    assert demo.pairs == [(1, 0), (2, 1)]  # (query: the later report, the earlier one it should find)


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
    [demo] = tracker_sources.trackers(tmp_path)
    assert demo.texts == ["Save crashes\nsame npe", "Crash on save\nnpe in writer", "Slow export\ntakes minutes"]
    assert demo.pairs == [(1, 0), (2, 0)]  # 20 and 30 each look for 10, whose id came as "10" and "10.0"




def _issue(issue_id: str, summary: str, description: str | None, duplicates: tuple[str, ...] = (),
           duplicated_by: tuple[str, ...] = ()) -> dict[str, object]:
    """An issue as Jira's REST API answers it (the fields the loader reads, and some it does not)."""
    links = [{"type": {"name": "Duplicate", "outward": "duplicates"}, "outwardIssue": {"id": d, "key": f"X-{d}"}}
             for d in duplicates]
    links += [{"type": {"name": "Duplicate", "inward": "is duplicated by"}, "inwardIssue": {"id": d}}
              for d in duplicated_by]
    links.append({"type": {"name": "Blocker"}, "outwardIssue": {"id": "1"}})  # not a duplicate link
    return {"id": issue_id, "key": f"X-{issue_id}", "fields": {
        "summary": summary, "description": description, "issuelinks": links, "resolution": None}}


def test_jira_issue_json_gives_pairs_from_duplicate_links_inside_the_project(tmp_path: Path) -> None:
    details = tmp_path / "Storm" / "details"
    details.mkdir(parents=True)
    issues = [_issue("1", "Worker dies", "NPE in Executor", duplicated_by=("3",)),
              _issue("2", "Slow UI", None),
              _issue("3", "Executor NPE", "same trace", duplicates=("1", "999"))]  # 999: another project
    for issue in issues:
        (details / f"X-{issue['id']}.json").write_text(json.dumps(issue))
    (details / "X-4.json").write_text("")  # an empty export file is skipped
    (tmp_path / "Storm" / "X-1.json").write_text(json.dumps(_issue("1", "ignored", "the folder's copy")))
    [storm] = tracker_sources.trackers(tmp_path)
    assert storm.name == "Storm"
    assert storm.texts == ["Worker dies\nNPE in Executor", "Slow UI\n", "Executor NPE\nsame trace"]
    assert storm.pairs == [(2, 0)]  # both links name the one pair; 3 looks for 1


def test_jira_search_results_are_read_as_issues(tmp_path: Path) -> None:
    folder = tmp_path / "Demo"
    folder.mkdir()
    page = {"startAt": 0, "issues": [_issue("10", "Crash", "a", duplicated_by=("11",)), _issue("11", "Crash!", "b")]}
    (folder / "search-0.json").write_text(json.dumps(page))
    [demo] = tracker_sources.trackers(tmp_path)
    assert demo.pairs == [(1, 0)]


def test_xy_pair_tables_tab_separated_give_each_report_once(tmp_path: Path) -> None:
    folder = tmp_path / "Office"
    folder.mkdir()
    header = ["", "bug_id_x", "title_x", "description_x", "dup_id_x", "bug_id_y", "title_y", "description_y"]
    with (folder / "OfficeDupsTest.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t").writerows([
            header, ["0", "22", "paste hangs", "images block", "5", "5", "paste slow", "html images"],
            ["1", "30", "paste freezes", "web page", "5", "5", "paste slow", "html images"],
            ["2", "31", "cut short"]])  # a row cut short: no pair, and nothing breaks
    [office] = tracker_sources.trackers(tmp_path)
    assert office.texts == ["paste hangs\nimages block", "paste slow\nhtml images", "paste freezes\nweb page"]
    assert office.pairs == [(0, 1), (2, 1)]  # 22 and 30 each look for 5, the earlier report


def test_pair_reports_only_keeps_the_pairs_reports_in_order_and_remaps_the_pairs() -> None:
    tracker = tracker_sources.Tracker("t", ["a", "b", "c", "d", "e"], [(3, 1), (4, 1)])
    small = tracker_sources.pair_reports_only(tracker)
    assert small.texts == ["b", "d", "e"] and small.pairs == [(1, 0), (2, 0)]
