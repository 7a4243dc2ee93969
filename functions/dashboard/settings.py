"""The dashboard's settings, read once from the environment at the edge."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # A direct (session) connection: pages run as the signed-in role on it.
    # Without it, pages read through PostgREST with each member's own token.
    database_url: str | None = None
    supabase_url: str | None = None
    # Sign-in with Supabase Auth; PostgREST's apikey on the Supabase path.
    supabase_anon_key: SecretStr | None = None
    # Realtime wake-ups; on the Supabase path also the operators' reads
    # (never a member's: theirs carry their own access token).
    supabase_service_role_key: SecretStr | None = None
    # Signs session cookies; the same on every instance.
    dashboard_session_secret: SecretStr | None = None
    # auto | realtime | listen | poll
    dashboard_live: str = "auto"
    # Comma-separated emails that sign in as operators (see everything).
    dashboard_operators: str = ""
    port: int = 8080

    def operators(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.dashboard_operators.split(",") if e.strip())
