"""The notifications report (``signalsloop notifications report``,
:mod:`signalsloop.cli.notifications`): over a window, how many notifications were sent, digested, rate-limited or
suppressed (by reason), and the share people marked useful, so "90% of alerts
are actionable" is measured, not assumed."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    import psycopg

# Outcomes as the report groups them (notifications.status -> outcome).
OUTCOMES = {"sent": "sent", "unconfigured": "sent_unconfigured", "unknown": "sent_unknown",
            "digested": "digested", "queued": "waiting_for_digest", "rate_limited": "rate_limited",
            "suppressed": "suppressed", "recorded": "recorded", "failed": "failed", "sending": "sending"}


def report(conn: psycopg.Connection[Any], since: datetime, project: UUID | None = None) -> dict[str, Any]:
    from signalsloop.operations.query import query

    where = "n.created_at >= %s and (%s::uuid is null or n.project_id = %s::uuid)"
    params = (since, project, project)
    by_status = query(conn, f"select n.status, count(*) as n from notifications n where {where} "
                      "group by n.status order by n.status", params)
    reasons = query(conn, f"select coalesce(n.reason, 'unspecified') as reason, count(*) as n from notifications n "
                    f"where {where} and n.status = 'suppressed' group by 1 order by 2 desc, 1", params)
    digests = query(conn, f"select count(*) as n from notifications n where {where} "
                    "and n.dedupe_key like 'digest:%%' and n.status in ('sent', 'unconfigured', 'unknown')", params)
    verdicts = query(conn, f"select f.verdict, count(*) as n, count(distinct f.notification_id) as messages "
                     f"from notification_feedback f join notifications n on n.id = f.notification_id "
                     f"where {where} group by f.verdict", params)
    counts = {OUTCOMES.get(r["status"], r["status"]): int(r["n"]) for r in by_status}
    marked = {r["verdict"]: int(r["n"]) for r in verdicts}
    total_votes = sum(marked.values())
    return {
        "since": since.isoformat(), "project": str(project) if project else None,
        "total": sum(counts.values()), "outcomes": counts,
        "suppressed_by_reason": {r["reason"]: int(r["n"]) for r in reasons},
        "digests_sent": int(digests[0]["n"]),
        "feedback": {"useful": marked.get("useful", 0), "not_useful": marked.get("not_useful", 0),
                     "messages_rated": sum(int(r["messages"]) for r in verdicts),
                     "useful_share": round(marked.get("useful", 0) / total_votes, 3) if total_votes else None},
    }
