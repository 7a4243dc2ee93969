"""The dashboard as a deployed service (Cloud Run): people sign in with
Supabase Auth, every instance shares the session secret, cookies are Secure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from functions.dashboard.app import Config


def config_from_env() -> Config:
    from functions.dashboard.app import Config
    from functions.dashboard.settings import DashboardSettings

    s = DashboardSettings()
    required = {"DATABASE_URL": s.database_url, "SUPABASE_URL": s.supabase_url,
                "SUPABASE_ANON_KEY": s.supabase_anon_key, "DASHBOARD_SESSION_SECRET": s.dashboard_session_secret}
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise ConfigurationError(f"the dashboard service needs {', '.join(missing)}")
    assert s.database_url and s.supabase_anon_key and s.dashboard_session_secret
    key = s.supabase_service_role_key or s.supabase_anon_key
    return Config(database_url=s.database_url, host="0.0.0.0", port=s.port,  # all interfaces: inside its container
                  session_secret=s.dashboard_session_secret.get_secret_value(), live=s.dashboard_live,
                  supabase_url=s.supabase_url, supabase_key=key.get_secret_value(),
                  supabase_anon_key=s.supabase_anon_key.get_secret_value(), operators=s.operators(),
                  secure_cookie=True)


def main() -> None:
    from functions.dashboard.app import serve

    serve(config_from_env())
