"""``signalsloop feedback post``: put feedback into the local stack the way the
web app does (an insert into ``posts``; the trigger publishes
``feedback.created``), so the agents, the cutover walkthrough and the
dashboard can be tried without writing SQL.

Without ``--project`` the posts go to one local project (slug ``local``),
created on first use. ``--sample N`` posts N items of the demo's sample
feedback (cycled when N is larger than the sample).
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import TYPE_CHECKING, Any
from uuid import UUID

from signalsloop.cli.common import EXIT_OK, database_url, group_usage

if TYPE_CHECKING:
    import psycopg

LOCAL_SLUG = "local"
#: The most sample posts one call makes (all are built in memory, then inserted at once).
MAX_SAMPLE = 100_000


def register(sub: Any) -> None:
    feedback = sub.add_parser("feedback", help="post feedback into the local stack (as the web app does)")
    feedback.set_defaults(handler=group_usage(feedback))
    commands = feedback.add_subparsers(title="feedback commands", metavar="<cmd>")
    post = commands.add_parser("post", help="insert posts; each one publishes feedback.created")
    post.add_argument("titles", nargs="*", metavar="TITLE", help="one post per title")
    post.add_argument("--body", default="", help="body of every post given by TITLE")
    post.add_argument("--sample", type=int, default=0, metavar="N", help="also post N items of sample feedback")
    post.add_argument("--project", help="project id (default: the local project, created if missing)")
    post.add_argument("--json", action="store_true", help="print the project id and the post ids as JSON")
    post.set_defaults(handler=cmd_post)


def sample_items(n: int) -> list[tuple[str, str]]:
    """The first ``n`` of the demo's sample feedback, in its order, cycled."""
    from signalsloop.local.scenario import waves

    items = [(item.title, item.body) for wave in waves() for item in wave]
    return list(itertools.islice(itertools.cycle(items), n))


def local_project(conn: psycopg.Connection[Any]) -> UUID:
    from signalsloop.operations.query import query

    # Slugs are unique per owner, and this project has none: two concurrent
    # first posts take turns (a transaction-scoped lock) instead of making two.
    query(conn, "select pg_advisory_xact_lock(hashtextextended('signalsloop:local-project', 0))")
    rows = query(conn, "select id from public.projects where owner_id is null and slug = %s "
                       "order by created_at limit 1", (LOCAL_SLUG,))
    if not rows:
        rows = query(conn, "insert into public.projects (name, slug) values ('Local', %s) returning id",
                     (LOCAL_SLUG,))
    return UUID(str(rows[0]["id"]))


def post_feedback(conn: psycopg.Connection[Any], items: list[tuple[str, str]],
                  project: UUID | None = None) -> tuple[UUID, list[UUID]]:
    """Insert the posts in one transaction; return the project and the post ids."""
    from shared.errors import BadRequest
    from signalsloop.operations.query import query

    for title, body in items:
        if not 1 <= len(title) <= 500 or len(body) > 20000:
            raise BadRequest(f"a title has 1-500 characters and a body at most 20000: {title[:40]!r}")
    with conn.transaction():
        if project is None:
            project = local_project(conn)
        elif not query(conn, "select 1 from public.projects where id = %s", (project,)):
            raise BadRequest(f"unknown project {project}")
        ids = [UUID(str(query(conn, "insert into public.posts (project_id, title, body) values (%s, %s, %s) "
                                    "returning id", (project, title, body))[0]["id"])) for title, body in items]
    return project, ids


def cmd_post(args: argparse.Namespace) -> int:
    from shared.errors import BadRequest
    from signalsloop.db import connect
    from signalsloop.operations.query import parse_uuid

    if not 0 <= args.sample <= MAX_SAMPLE:
        raise BadRequest(f"--sample must be between 0 and {MAX_SAMPLE:,}")
    items = [(title, args.body) for title in args.titles] + sample_items(args.sample)
    if not items:
        raise BadRequest("nothing to post: give a TITLE or --sample N")
    project = parse_uuid(args.project, "project id") if args.project else None
    with connect(database_url()) as conn:
        project, ids = post_feedback(conn, items, project)
    if args.json:
        print(json.dumps({"project_id": str(project), "post_ids": [str(i) for i in ids]}, indent=2))
    else:
        items_word = "item" if len(ids) == 1 else "items"
        print(f"posted {len(ids)} feedback {items_word} to project {project}; each published feedback.created")
    return EXIT_OK
