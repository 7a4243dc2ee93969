"""Hybrid duplicate search for batches: the duplicate agent's own SQL.

``signalsloop analyze similarity`` and the benchmarks put their lines into a
throwaway project inside one transaction that is always rolled back, then ask
``public.match_feedback_hybrid`` for each line's neighbours: the same function,
lexemes and calibrated score the duplicate agent uses, so a backfill and the
live agent cannot disagree. Nothing is left behind in the database.

Without ``DATABASE_URL`` a scratch embedded PostgreSQL is started in a
temporary folder (a few seconds) and deleted afterwards.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from shared.store import Write

#: Posts (and embeddings) sent per statement while loading.
LOAD_CHUNK = 500
MAX_TITLE, MAX_BODY = 500, 20_000  # posts' check constraints
#: A first line of more words than this is not a title but a summary and its
#: description run together (a one-line export): see :func:`lead_as_title`.
TITLE_WORDS = 30
#: The most words of such a line's lead taken as its title.
LEAD_WORDS = 20
_SENTENCE_END = re.compile(r"[.?!:;](?=\s)")


@contextmanager
def scratch_database(database_url: str | None) -> Iterator[str]:
    """``database_url`` if given (migrated), else a temporary embedded server."""
    from signalsloop.db import migrate, start_embedded, stop_embedded

    if database_url:
        migrate(database_url)
        yield database_url
        return
    with tempfile.TemporaryDirectory(prefix="signalsloop-analyze-") as tmp:
        url = start_embedded(Path(tmp) / "pg", cleanup="delete")
        try:
            migrate(url)
            yield url
        finally:
            stop_embedded()


def split_text(text: str) -> tuple[str, str]:
    """A line's text as a post: its first line is the title, the rest the body."""
    head, _, rest = text.strip().partition("\n")
    title = head.strip()[:MAX_TITLE] or " "
    body = (head.strip()[MAX_TITLE:] + "\n" + rest).strip()[:MAX_BODY]
    return title, body


def lead_as_title(text: str, title_words: int = TITLE_WORDS, lead_words: int = LEAD_WORDS) -> str:
    """``text`` with its lead on a first line of its own when its first line is
    too long to be a title: the first sentence if it has at most ``lead_words``
    words, else the first ``lead_words`` words; any other text is returned as is.

    The search weighs a title's words double and the embedder pools the first
    line apart (see ``shared.analyzers.offline_embedding``). An export that runs
    a summary and its description into one line loses both, and a report's
    summary is almost always in its first words: on five real trackers so
    exported, this gained 0.01-0.09 recall@5 (docs/ai.md has the figures).
    """
    head, _, rest = text.strip().partition("\n")
    words = head.split()
    if len(words) <= title_words:
        return text
    end = _SENTENCE_END.search(head)
    if end is not None and len(head[:end.end()].split()) <= lead_words:
        lead, remainder = head[:end.end()].strip(), head[end.end():].strip()
    else:
        lead, remainder = " ".join(words[:lead_words]), " ".join(words[lead_words:])
    return "\n".join(part for part in (lead, remainder, rest.strip()) if part)


class ScratchProject:
    """Texts and their embeddings loaded as posts of a project that exists only
    inside the caller's transaction (roll it back to drop everything).

    Loading skips the domain triggers (``session_replication_role = replica``,
    for this transaction only, which needs a superuser: the scratch database's
    own): a backfill must not publish feedback.created 100,000 times. The
    lexemes are written with the trigger's own ``feedback_tsvector``. The
    embeddings' HNSW index (where pgvector is) is dropped while loading and
    built again, from its own definition, before the first lookup: one
    build is ~20 times faster than 100,000 single inserts.
    """

    def __init__(self, conn: psycopg.Connection, model: str) -> None:
        self.conn, self.model = conn, model
        self.project = uuid.uuid4()
        self.ids: list[uuid.UUID] = []
        self._pos: dict[uuid.UUID, int] = {}
        self._indexes: list[str] = []
        conn.execute("set local session_replication_role = replica")
        conn.execute("insert into public.projects (id, name, slug) values (%s, 'analyze', %s)",
                     (self.project, f"analyze-{self.project.hex[:20]}"))

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if not self._indexes:
            self._drop_vector_indexes()
        for start in range(0, len(texts), LOAD_CHUNK):
            chunk, vecs = texts[start:start + LOAD_CHUNK], vectors[start:start + LOAD_CHUNK]
            ids = [uuid.uuid4() for _ in chunk]
            titles, bodies = zip(*(split_text(t) for t in chunk), strict=True)
            self.conn.execute(
                "insert into public.posts (id, project_id, title, body)"
                " select i, %s, t, b from unnest(%s::uuid[], %s::text[], %s::text[]) as u(i, t, b)",
                (self.project, ids, list(titles), list(bodies)))
            self.conn.execute(
                "insert into public.feedback_lexemes (feedback_id, project_id, lexemes, terms)"
                " select p.id, p.project_id, v.l, length(v.l) from public.posts p"
                " cross join lateral (select public.feedback_tsvector(p.title, p.body) as l) v"
                " where p.id = any(%s::uuid[])", (ids,))
            rows = [{"feedback_id": i, "project_id": self.project, "model": self.model, "dims": int(v.shape[0]),
                     "embedding": [float(x) for x in v]} for i, v in zip(ids, vecs, strict=True)]
            write = Write("feedback_embeddings", rows, ("feedback_id",))
            self.conn.execute("select public.apply_writes(%s::jsonb)", (Jsonb([write.to_json()]),))
            self.ids.extend(ids)

    def _drop_vector_indexes(self) -> None:
        rows = self.conn.execute(
            "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) from pg_index i"
            " join pg_class c on c.oid = i.indexrelid join pg_am a on a.oid = c.relam"
            " where i.indrelid = 'public.feedback_embeddings'::regclass and a.amname = 'hnsw'").fetchall()
        for name, definition in rows:
            self.conn.execute(f"drop index {name}")
            self._indexes.append(definition)

    def matches(self, index: int, vector: np.ndarray, top: int,
                min_score: float = 0.0) -> list[tuple[int, float, float, float]]:
        """(line index, fused score, cosine, lexical overlap) of the best ``top``, best first."""
        if self._indexes:
            self.conn.execute("set local maintenance_work_mem = '256MB'")
            for definition in self._indexes:
                self.conn.execute(definition)
            self.conn.execute("analyze public.feedback_lexemes")
            self.conn.execute("analyze public.feedback_embeddings")
            self._indexes = []
        rows = self.conn.execute(
            "select feedback_id, score, similarity, lexical"
            "  from public.match_feedback_hybrid(%s, %s, %s, %s::float8[], %s, %s)",
            (self.project, self.ids[index], self.model, [float(x) for x in vector], top, min_score)).fetchall()
        position = self._positions()
        return [(position[r[0]], float(r[1]), float(r[2]), float(r[3])) for r in rows]

    def _positions(self) -> dict[uuid.UUID, int]:
        if len(self._pos) != len(self.ids):
            self._pos = {i: n for n, i in enumerate(self.ids)}
        return self._pos


@contextmanager
def scratch_project(conn: psycopg.Connection, model: str) -> Iterator[ScratchProject]:
    """A :class:`ScratchProject` whose rows are rolled back on exit, always."""
    tx = conn.transaction(force_rollback=True)
    with tx:
        yield ScratchProject(conn, model)
