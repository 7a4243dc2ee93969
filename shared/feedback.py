"""Helpers agents share for reading feedback and project settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from shared.ports import FeedbackItem
from shared.project_settings import check_project_settings
from shared.store import Store


def _joined(payload: Mapping[str, Any], separator: str) -> str:
    title = str(payload.get("title") or "").strip()
    body = str(payload.get("body") or "").strip()
    return f"{title}{separator}{body}" if title and body else title or body


def feedback_text(payload: Mapping[str, Any]) -> str:
    """The analysable text of a feedback payload or row: title and body."""
    return _joined(payload, ". ")


def embedding_text(payload: Mapping[str, Any]) -> str:
    """What a post's vector is made of: the title on the first line, the body
    after it, the layout the offline embedder pools apart (and the one
    ``signalsloop analyze`` lines and their scratch posts use)."""
    return _joined(payload, "\n")


def load_post(store: Store, feedback_id: UUID) -> dict[str, Any] | None:
    rows = store.select("posts", eq={"id": feedback_id})
    return rows[0] if rows else None


def project_settings(store: Store, project_id: UUID) -> dict[str, Any]:
    """The project's settings, checked (a bad value: :class:`InvalidSettings`)."""
    rows = store.select("projects", eq={"id": project_id}, columns=["settings"])
    return check_project_settings(rows[0]["settings"] if rows else None)


def as_item(row: Mapping[str, Any]) -> FeedbackItem:
    return FeedbackItem(id=row["id"], title=row.get("title") or "", body=row.get("body") or "",
                        votes=int(row.get("vote_count") or 0))
