"""``signalsloop rollout compare``: shadow decisions beside what is live for
the same items, in each agent's own terms.

- sentiment: label agreement and the correlation of scores;
- duplicate: overlap (Jaccard) of the candidate sets;
- theme: agreement of the assignments (Rand index over pairs of items, themes
  matched by id when the shadow run joined a live theme, else by name);
- any other agent: the same decision or not (every value the shadow run would
  have written equals the live row with the same key).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg

from signalsloop.operations.query import query

VOLATILE = {"model", "source_event_id", "source_event_at", "analyzed_at", "calculated_at", "created_at",
            "updated_at", "sent_at", "id"}


def compare(conn: psycopg.Connection[Any], agent: str, project: UUID | None = None,
            since: timedelta = timedelta(days=7)) -> dict[str, Any]:
    shadows = query(conn, "select aggregate_id, decision, model from public.shadow_results "
                          "where agent = %s and created_at >= now() - %s and (%s::uuid is null or project_id = %s) "
                          "order by created_at", (agent, since, project, project))
    latest = {str(s["aggregate_id"]): s for s in shadows}  # the newest decision per item
    kind = agent if agent in COMPARERS else "generic"
    report = COMPARERS[kind](conn, latest)
    report["disagreements"] = _with_titles(conn, report["disagreements"])
    return {"agent": agent, "kind": kind, "shadow_items": len(latest), **report}


def _with_titles(conn: psycopg.Connection[Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feedback's title beside its id, so a person can say which side is right."""
    items = [r["item"] for r in rows]
    titles = {str(r["id"]): r["title"] for r in
              query(conn, "select id, title from public.posts where id = any(%s::uuid[])", (items,))}
    if not titles:
        return rows
    return [{"item": r["item"], "title": titles.get(r["item"], ""), **r} for r in rows]


def _rows(shadow: Mapping[str, Any], table: str) -> list[dict[str, Any]]:
    return [dict(r) for w in shadow["decision"].get("writes", []) if w["table"] == table for r in w["rows"]]


def _live(conn: psycopg.Connection[Any], table: str, key: str, ids: Iterable[str]) -> list[dict[str, Any]]:
    return query(conn, f"select * from public.{table} where {key} = any(%s::uuid[])", (list(ids),))


def _sentiment(conn: psycopg.Connection[Any], shadows: Mapping[str, Any]) -> dict[str, Any]:
    live = {str(r["feedback_id"]): r for r in _live(conn, "sentiment_analysis", "feedback_id", shadows)}
    pairs = []
    for item, shadow in shadows.items():
        rows = _rows(shadow, "sentiment_analysis")
        if rows and item in live:
            pairs.append((item, rows[0], live[item]))
    agree = sum(s["label"] == x["label"] for _, s, x in pairs)
    scores = [(float(s["score"]), float(x["score"])) for _, s, x in pairs]
    corr = None
    if len(scores) >= 2 and len({a for a, _ in scores}) > 1 and len({b for _, b in scores}) > 1:
        corr = statistics.correlation([a for a, _ in scores], [b for _, b in scores])
    return {"compared": len(pairs), "label_agreement": agree / len(pairs) if pairs else None,
            "score_correlation": corr,
            "disagreements": [{"item": i, "shadow": s["label"], "live": x["label"], "live_model": x["model"]}
                              for i, s, x in pairs if s["label"] != x["label"]]}


def _duplicate(conn: psycopg.Connection[Any], shadows: Mapping[str, Any]) -> dict[str, Any]:
    live: dict[str, set[str]] = {}
    for r in _live(conn, "duplicates", "feedback_id", shadows):
        live.setdefault(str(r["feedback_id"]), set()).add(str(r["duplicate_of"]))
    overlaps, disagreements = [], []
    for item, shadow in shadows.items():
        mine = {str(r["duplicate_of"]) for r in _rows(shadow, "duplicates")}
        theirs = live.get(item, set())
        union = mine | theirs
        overlap = len(mine & theirs) / len(union) if union else 1.0
        overlaps.append(overlap)
        if overlap < 1.0:
            disagreements.append({"item": item, "shadow": sorted(mine), "live": sorted(theirs),
                                  "overlap": round(overlap, 3)})
    return {"compared": len(overlaps), "candidate_overlap": statistics.fmean(overlaps) if overlaps else None,
            "disagreements": disagreements}


def _theme(conn: psycopg.Connection[Any], shadows: Mapping[str, Any]) -> dict[str, Any]:
    links = {str(r["feedback_id"]): str(r["theme_id"]) for r in _live(conn, "theme_feedback", "feedback_id", shadows)}
    names = {str(r["id"]): r["name"] for r in query(conn, "select id, name from public.themes where id = any(%s)",
                                                       (list(set(links.values())),))}
    mine: dict[str, str] = {}
    for item, shadow in shadows.items():
        new = {str(t["id"]): t["name"] for t in _rows(shadow, "themes")}
        for link in _rows(shadow, "theme_feedback"):
            theme = str(link["theme_id"])
            mine[item] = f"name:{new[theme]}" if theme in new and theme not in names else theme
    items = sorted(set(mine) & set(links))
    pairs = list(itertools.combinations(items, 2))
    agree = sum((mine[a] == mine[b]) == (links[a] == links[b]) for a, b in pairs)
    live_group = {i: f"name:{names.get(links[i], '')}" for i in items}
    return {"compared": len(items), "assignment_agreement": agree / len(pairs) if pairs else None,
            "disagreements": [{"item": i, "shadow": mine[i].removeprefix("name:"),
                               "live": names.get(links[i], links[i])}
                              for i in items if mine[i] not in (links[i], live_group[i])]}


def _generic(conn: psycopg.Connection[Any], shadows: Mapping[str, Any]) -> dict[str, Any]:
    same, disagreements = 0, []
    for item, shadow in shadows.items():
        differences = []
        for write in shadow["decision"].get("writes", []):
            keys = write.get("on_conflict") or []
            for row in write["rows"]:
                differences += _row_differences(conn, write["table"], keys, row)
        if differences:
            disagreements.append({"item": item, "differences": differences[:5]})
        else:
            same += 1
    total = len(shadows)
    return {"compared": total, "same_decision": same / total if total else None, "disagreements": disagreements}


def _row_differences(conn: psycopg.Connection[Any], table: str, keys: list[str], row: Mapping[str, Any]) -> list[str]:
    if not keys or not all(k.isidentifier() for k in [table, *keys, *row]):
        return []
    where = " and ".join(f"{k}::text = %s" for k in keys)
    live = query(conn, f"select * from public.{table} where {where}", tuple(str(row[k]) for k in keys))
    if not live:
        return [f"{table}: no live row"]
    return [f"{table}.{col}: shadow {row[col]!r}, live {live[0].get(col)!r}" for col in row
            if col not in VOLATILE and col in live[0] and not _equal(row[col], live[0][col])]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))
    return str(a) == str(b)


COMPARERS = {"sentiment": _sentiment, "duplicate": _duplicate, "theme": _theme, "generic": _generic}
