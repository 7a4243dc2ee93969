"""A stand-in for the code the event backbone replaces, for the local
cutover walkthrough: the old synchronous sentiment (VADER, called from the
request) writing where it always wrote, ``sentiment_analysis``, with its
model named ``legacy-http/vader``. A team running the plan has its real
legacy path; this lets ``rollout compare`` be tried on a laptop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from signalsloop.operations.query import query

MODEL = "legacy-http/vader"


def legacy_label(compound: float) -> str:
    """VADER's own recommended thresholds."""
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


def write_legacy_sentiment(conn: psycopg.Connection[Any], since: timedelta) -> int:
    """Sentiment for the window's posts that have none live yet, except the
    share the sentiment agent has live: the legacy writer is off for the same
    items (``rollout_bucket``), as the plan's cutover asks of the real one."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    posts = query(conn, "select p.id, p.project_id, p.title, p.body from public.posts p "
                        "left join public.sentiment_analysis s on s.feedback_id = p.id "
                        "cross join public.agents a "
                        "where a.name = 'sentiment' and s.feedback_id is null and p.created_at >= now() - %s "
                        "and not (a.mode = 'live' and public.rollout_bucket('sentiment', p.id) < a.rollout_percent)",
                  (since,))
    for post in posts:
        compound = float(vader.polarity_scores(f"{post['title']}. {post['body']}")["compound"])
        query(conn, "insert into public.sentiment_analysis (feedback_id, project_id, label, score, confidence, model) "
                    "values (%s, %s, %s, %s, %s, %s) on conflict (feedback_id) do nothing",
              (post["id"], post["project_id"], legacy_label(compound), round(compound, 4),
               round(abs(compound), 4), MODEL))
    return len(posts)
