"""``signalsloop dashboard``: serve the live dashboard and print its sign-in URL.

Prints exactly one line on stdout, ``dashboard: <url>``, once it serves; the
URL carries a one-time token that becomes a session cookie, signed in as the
member given by ``--as-user`` or as an operator who sees everything.

Where it reads (the first that is set wins): ``DATABASE_URL``, a direct
connection; else ``SUPABASE_URL`` with ``SUPABASE_ANON_KEY``, the Cloud Run
service's path (PostgREST with each member's own token, Realtime, Supabase
Auth) with no database on this machine; else the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any
from uuid import UUID

from shared.errors import BadRequest, ConfigurationError
from signalsloop.cli.common import EXIT_OK, database_url

LIVE_MODES = ("auto", "listen", "realtime", "poll")
SOURCES = """\
where it reads (environment or .env; the first that is set wins, so DATABASE_URL wins if both are set):
  DATABASE_URL                         a direct connection: pages run as the signed-in role on it
  SUPABASE_URL + SUPABASE_ANON_KEY     no database here: pages are PostgREST calls with each member's
                                       own token, live updates from Realtime, sign-in with Supabase Auth
                                       at /login; the printed URL signs in as an operator with
                                       SUPABASE_SERVICE_ROLE_KEY (without it, it is the /login page)
  neither (and no SUPABASE_URL)        the embedded PostgreSQL under .signalsloop/pgdata
"""


def register(sub: Any) -> None:
    parser = sub.add_parser("dashboard", help="serve the live event dashboard in the browser", epilog=SOURCES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--as-user", metavar="UUID",
                        help="sign the printed URL in as this member (RLS applies; needs a database: with only "
                             "SUPABASE_URL, members sign in with Supabase Auth at /login)")
    parser.add_argument("--live", choices=LIVE_MODES, default=None,
                        help="how the server learns of new events (default auto: Realtime with SUPABASE_URL and "
                             "SUPABASE_SERVICE_ROLE_KEY, else LISTEN, polling if that fails)")
    parser.set_defaults(handler=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from functions.dashboard.app import Server, serve
    from functions.dashboard.service import config_for
    from functions.dashboard.settings import DashboardSettings
    from signalsloop.local.stack import free_port

    who = identity_for(args.as_user)
    if not 0 <= args.port <= 65535:
        raise BadRequest(f"--port must be between 0 and 65535, got {args.port}")
    settings = DashboardSettings()
    url = database_for(settings)
    if url is None:
        who = supabase_identity(settings, who)
        print(f"note: no DATABASE_URL: reading through PostgREST at {settings.supabase_url}", file=sys.stderr)
    else:
        who = check_member(url, who)

    def ready(server: Server) -> None:
        print(f"dashboard: {server.login_url(who) if who else server.base_url + '/login'}", flush=True)

    edge: dict[str, Any] = {"host": args.host, "port": args.port or free_port(), "on_ready": ready}
    if settings.dashboard_session_secret:
        edge["session_secret"] = settings.dashboard_session_secret.get_secret_value()
    config = config_for(settings, database_url=url, **edge)
    if args.live:
        config.live = args.live
    serve(config)
    return EXIT_OK


def database_for(settings: Any) -> str | None:
    """DATABASE_URL; None for the Supabase path (SUPABASE_URL and
    SUPABASE_ANON_KEY without it); else, when SUPABASE_URL is not set
    either, the embedded PostgreSQL, started."""
    if settings.database_url:
        return str(settings.database_url)
    if settings.supabase_url and settings.supabase_anon_key:
        return None
    if settings.supabase_url:  # meant for Supabase, not for a database on this machine
        raise ConfigurationError("SUPABASE_URL without SUPABASE_ANON_KEY: the dashboard reads through PostgREST "
                                 "and signs people in with that key; set it, or DATABASE_URL")
    return database_url()


def supabase_identity(settings: Any, who: Any) -> Any:
    """Who the printed URL signs in on the Supabase path: the operator when
    the service-role key is there to read with, else nobody (the URL is then
    the Supabase Auth sign-in page). A member's reads carry their own access
    token, which only their own sign-in gives."""
    if not who.operator:
        raise ConfigurationError("--as-user needs DATABASE_URL: with only SUPABASE_URL, members sign in "
                                 "with Supabase Auth at /login")
    return who if settings.supabase_service_role_key else None


def identity_for(as_user: str | None) -> Any:
    from functions.dashboard.db import Identity

    if as_user is None:
        return Identity(None, "operator", operator=True)
    try:
        return Identity(UUID(as_user), as_user)
    except ValueError:
        raise BadRequest(f"--as-user must be a user's uuid, got {as_user!r}") from None


def check_member(url: str, who: Any) -> Any:
    """A member that does not exist would see an empty dashboard: say so instead."""
    if who.operator:
        return who
    from signalsloop.db import connect

    with connect(url) as conn:
        row = conn.execute("select email from auth.users where id = %s", (who.user_id,)).fetchone()
    if row is None:
        raise ConfigurationError(f"no user {who.user_id} in auth.users")
    return dataclasses.replace(who, label=row[0] or who.label)
