"""The per-project digest: on clock.tick, everything queued since the last
digest (below the send-at-once level, or held back by the rate limit) goes out
as one message, most important first. Pure.

One digest per project and tick (its key is the tick's time): a replayed tick
finds the digest already sent. Only items created before the tick are taken,
so a retry of the same tick takes the same items.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.agent import Decision
from shared.events import DomainEvent
from shared.ports import Message
from shared.publish import stable_id
from shared.store import Write

DEFAULT_DIGEST_HOURS = 1
MODEL = "notify-digest-1"
MAX_LINES = 15
ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def is_due(at: datetime, settings: Mapping[str, Any], cadence_seconds: int | None = None) -> bool:
    """Hourly by default; settings.notify_digest_hours = N sends on every Nth hour.

    ``cadence_seconds`` is the clock's (the tick's ``interval_seconds``): when
    it ticks more often than the digest period, only the first tick of each
    period sends, so a 10-minute clock still gives an hourly digest."""
    hours = max(1, int(settings.get("notify_digest_hours", DEFAULT_DIGEST_HOURS)))
    period = hours * 3600
    if cadence_seconds and 0 < cadence_seconds < period:
        return int(at.timestamp()) % period < cadence_seconds
    return at.minute == 0 and at.hour % hours == 0 if hours > 1 else True


def text_for(items: Sequence[Mapping[str, Any]], at: str) -> str:
    """Normal and above one line each, most important first; low ones counted by kind."""
    ordered = sorted(items, key=lambda i: (ORDER.get(str(i["importance"]), 9), str(i["created_at"])))
    listed = [i for i in ordered if i["importance"] != "low"]
    lines = [f"• {i['text']} _({i['importance']})_" for i in listed[:MAX_LINES]]
    if len(listed) > MAX_LINES:
        lines.append(f"…and {len(listed) - MAX_LINES} more")
    small = Counter(str(i.get("event_type") or "other") for i in ordered if i["importance"] == "low")
    if small:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(small.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"Also {sum(small.values())} smaller updates: {kinds}")
    held = sum(1 for i in items if i["status"] == "rate_limited")
    note = f" ({held} held back by the rate limit)" if held else ""
    head = f":newspaper: Digest up to {at}: {len(items)} update{'s' if len(items) != 1 else ''}{note}"
    return "\n".join([head, *lines])


def decide(event: DomainEvent, queued: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], now: datetime,
           channel: str | None) -> Decision:
    at = str(event.payload.get("at") or "")
    try:
        due = is_due(datetime.fromisoformat(at), settings, int(event.payload.get("interval_seconds") or 0))
    except (TypeError, ValueError):
        return Decision(summary={"digest": "skipped", "reason": f"tick without a valid time: {at!r}"})
    if not due:
        return Decision(summary={"digest": "not due", "queued": len(queued)})
    if not queued:
        return Decision(summary={"digest": "nothing queued"})
    key = f"digest:{event.project_id}:{at}:notify"
    message = Message(key=key, id=stable_id("notification", key), project_id=event.project_id,
                      text=text_for(queued, at), importance="normal", channel=channel, model=MODEL)
    rows = [{"dedupe_key": i["dedupe_key"], "project_id": event.project_id, "text": i["text"],
             "importance": i["importance"], "status": "digested" if i["status"] == "queued" else i["status"],
             "digest_key": key, "digested_at": now} for i in queued]
    return Decision(writes=[Write("notifications", rows, ("dedupe_key",))], messages=[message],
                    summary={"digest": key, "items": len(rows)})
