"""The dashboard as a deployed service (Cloud Run): people sign in with
Supabase Auth, every instance shares the session secret, cookies are Secure.

Two data paths (docs/dashboard.md): with ``DATABASE_URL`` pages read on a
direct connection as the signed-in role; without it, through supabase-py
(PostgREST) with each member's own access token. Operators
(``DASHBOARD_OPERATORS``) see everything: the owner connection, or on the
Supabase path the service-role key, which that path then requires.

:func:`config_for` is the one reading of those settings, shared with
``signalsloop dashboard`` (which adds its own host, port and sign-in URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from functions.dashboard.app import Config
    from functions.dashboard.settings import DashboardSettings


def config_for(s: DashboardSettings, *, database_url: str | None, **edge: Any) -> Config:
    """The dashboard's data path and live source from its settings; ``edge``
    (host, port, session secret, cookies, ...) is the caller's own."""
    from functions.dashboard.app import Config

    if not database_url and s.operators() and not s.supabase_service_role_key:
        raise ConfigurationError("DASHBOARD_OPERATORS without DATABASE_URL needs SUPABASE_SERVICE_ROLE_KEY "
                                 "(operators read every project with it)")
    service_key = s.supabase_service_role_key.get_secret_value() if s.supabase_service_role_key else None
    return Config(database_url=database_url, live=s.dashboard_live,
                  # Realtime wake-ups need a key that receives every insert (RLS
                  # gives the anon key none); without it: LISTEN, or polling.
                  supabase_url=s.supabase_url, supabase_key=service_key,
                  supabase_anon_key=s.supabase_anon_key.get_secret_value() if s.supabase_anon_key else None,
                  supabase_service_role_key=service_key, operators=s.operators(), **edge)


def config_from_env() -> Config:
    from functions.dashboard.settings import DashboardSettings

    s = DashboardSettings()
    required = {"SUPABASE_URL": s.supabase_url, "SUPABASE_ANON_KEY": s.supabase_anon_key,
                "DASHBOARD_SESSION_SECRET": s.dashboard_session_secret}
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise ConfigurationError(f"the dashboard service needs {', '.join(missing)}")
    assert s.dashboard_session_secret
    return config_for(s, database_url=s.database_url, host="0.0.0.0", port=s.port,  # all interfaces: its container
                      session_secret=s.dashboard_session_secret.get_secret_value(), secure_cookie=True)


def main() -> None:
    from functions.dashboard.app import serve

    serve(config_from_env())
