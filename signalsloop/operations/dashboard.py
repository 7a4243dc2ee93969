"""``signalsloop dashboard``: serve the live dashboard and print its sign-in URL.

Prints exactly one line on stdout, ``dashboard: <url>``, once it serves; the
URL carries a one-time token that becomes a session cookie, signed in as the
member given by ``--as-user`` or as an operator who sees everything.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any
from uuid import UUID

from shared.errors import BadRequest, ConfigurationError

LIVE_MODES = ("auto", "listen", "realtime", "poll")


def register(sub: Any) -> None:
    parser = sub.add_parser("dashboard", help="serve the live event dashboard in the browser")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--as-user", metavar="UUID", help="sign the printed URL in as this member (RLS applies)")
    parser.add_argument("--live", choices=LIVE_MODES, default=None,
                        help="how the server learns of new events (default auto: Realtime with SUPABASE_URL and "
                             "a key, else LISTEN, polling if that fails)")
    parser.set_defaults(handler=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from functions.dashboard.app import Config, Server, serve
    from functions.dashboard.settings import DashboardSettings
    from signalsloop.cli import database_url
    from signalsloop.local.stack import free_port

    who = identity_for(args.as_user)
    if not 0 <= args.port <= 65535:
        raise BadRequest(f"--port must be between 0 and 65535, got {args.port}")
    settings = DashboardSettings()
    url = database_url()
    who = check_member(url, who)
    secret = settings.dashboard_session_secret
    key = settings.supabase_service_role_key or settings.supabase_anon_key

    def ready(server: Server) -> None:
        print(f"dashboard: {server.login_url(who)}", flush=True)

    config = Config(database_url=url, host=args.host, port=args.port or free_port(),
                    live=args.live or settings.dashboard_live, supabase_url=settings.supabase_url,
                    supabase_key=key.get_secret_value() if key else None,
                    supabase_anon_key=settings.supabase_anon_key.get_secret_value()
                    if settings.supabase_anon_key else None,
                    operators=settings.operators(), on_ready=ready)
    if secret:
        config.session_secret = secret.get_secret_value()
    serve(config)
    return 0


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

