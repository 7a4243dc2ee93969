"""The dashboard as a deployed service (Cloud Run): people sign in with
Supabase Auth, every instance shares the session secret, cookies are Secure.

Two data paths (docs/dashboard.md): with ``DATABASE_URL`` pages read on a
direct connection as the signed-in role; without it, through supabase-py
(PostgREST) with each member's own access token. Operators
(``DASHBOARD_OPERATORS``) see everything: the owner connection, or on the
Supabase path the service-role key, which that path then requires."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from functions.dashboard.app import Config


def config_from_env() -> Config:
    from functions.dashboard.app import Config
    from functions.dashboard.settings import DashboardSettings

    s = DashboardSettings()
    required = {"SUPABASE_URL": s.supabase_url, "SUPABASE_ANON_KEY": s.supabase_anon_key,
                "DASHBOARD_SESSION_SECRET": s.dashboard_session_secret}
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise ConfigurationError(f"the dashboard service needs {', '.join(missing)}")
    if not s.database_url and s.operators() and not s.supabase_service_role_key:
        raise ConfigurationError("DASHBOARD_OPERATORS without DATABASE_URL needs SUPABASE_SERVICE_ROLE_KEY "
                                 "(operators read every project with it)")
    assert s.supabase_anon_key and s.dashboard_session_secret
    service_key = s.supabase_service_role_key.get_secret_value() if s.supabase_service_role_key else None
    return Config(database_url=s.database_url, host="0.0.0.0", port=s.port,  # all interfaces: inside its container
                  session_secret=s.dashboard_session_secret.get_secret_value(), live=s.dashboard_live,
                  # Realtime wake-ups need a key that receives every insert (RLS
                  # gives the anon key none); without it: LISTEN, or polling.
                  supabase_url=s.supabase_url, supabase_key=service_key,
                  supabase_anon_key=s.supabase_anon_key.get_secret_value(), supabase_service_role_key=service_key,
                  operators=s.operators(), secure_cookie=True)


def main() -> None:
    from functions.dashboard.app import serve

    serve(config_from_env())
