"""The lexeme rarity map behind hybrid search (20261202001501): kept by the
sweep, used only while the statistics it came from are the ones this
transaction sees, so a result never depends on whether the cache was fresh."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.helpers import Seed

WORDS = ["export", "crash", "login", "calendar", "slack", "offline", "attachment", "shortcut", "sync", "theme"]


def _posts(seed: Seed, project: Any, n: int, extra: str = "") -> None:
    for i in range(n):
        seed.post(project, f"{WORDS[i % len(WORDS)]} {WORDS[(i * 3) % len(WORDS)]} {extra}{i % 4}",
                  f"about {WORDS[(i * 7) % len(WORDS)]}")


def _value(db: psycopg.Connection, sql: str) -> Any:
    return next(iter(db.execute(sql).fetchone().values()))  # type: ignore[union-attr]


def test_the_sweep_keeps_the_live_map_and_lookups_use_it(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    _posts(seed, project, 40)
    db.execute("analyze public.feedback_lexemes")
    live = _value(db, "select public.lexeme_shares_live()")
    assert len(live) > 5  # the statistics list common lexemes, plus the '' default
    assert _value(db, "select public.run_periodic() -> 'lexeme_shares_refreshed'") is True
    assert _value(db, "select public.refresh_lexeme_shares()") is False  # nothing changed since
    assert _value(db, "select public.lexeme_shares()") == live
    # The cached row is what lookups read while its version is current.
    db.execute("update public.lexeme_shares_cache set shares = %s", (Jsonb({"": 0.25, "export": 0.5}),))
    assert _value(db, "select public.lexeme_shares()") == {"": 0.25, "export": 0.5}


def test_new_statistics_are_used_before_the_sweep_catches_up(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    _posts(seed, project, 40)
    db.execute("analyze public.feedback_lexemes")
    db.execute("select public.refresh_lexeme_shares()")
    cached = _value(db, "select shares from public.lexeme_shares_cache")
    _posts(seed, project, 60, extra="zeppelin ")
    db.execute("analyze public.feedback_lexemes")
    live = _value(db, "select public.lexeme_shares_live()")
    assert live != cached and "zeppelin" in live
    assert _value(db, "select public.lexeme_shares()") == live  # not the stale row
    assert _value(db, "select public.refresh_lexeme_shares()") is True
    assert _value(db, "select shares from public.lexeme_shares_cache") == live


def test_an_analyze_inside_a_transaction_is_seen_by_that_transaction(db_url: str, db: psycopg.Connection,
                                                                     seed: Seed) -> None:
    """The analyze times are not transactional: an ANALYZE in an open
    transaction moves them for everyone, and a sweep refreshing meanwhile
    caches the committed statistics under the new times. The transaction
    that analyzed must still get the map of the statistics it sees."""
    project = seed.project()
    _posts(seed, project, 40)
    db.execute("analyze public.feedback_lexemes")
    with psycopg.connect(db_url) as scratch:
        _posts(Seed(scratch), project, 60, extra="zeppelin ")
        scratch.execute("analyze public.feedback_lexemes")
        db.execute("select public.refresh_lexeme_shares()")  # the sweep, from the committed statistics
        assert "zeppelin" not in _value(db, "select shares from public.lexeme_shares_cache")
        mine = scratch.execute("select public.lexeme_shares(), public.lexeme_shares_live()").fetchone()
        assert mine is not None and mine[0] == mine[1] and "zeppelin" in mine[0]
        scratch.rollback()
    assert _value(db, "select public.lexeme_shares()") == _value(db, "select public.lexeme_shares_live()")
