"""Choosing adapters from settings, at the edge."""

from __future__ import annotations

from shared.errors import ConfigurationError
from shared.settings import Settings
from shared.store import Store


def build_store(settings: Settings) -> Store:
    """psycopg when ``DATABASE_URL`` is set (local, CI, a direct connection);
    supabase-py with the service-role key otherwise (production)."""
    if settings.database_url:
        from shared.postgres_store import PostgresStore

        return PostgresStore(settings.database_url)
    if settings.supabase_url and settings.supabase_service_role_key:
        from shared.supabase_store import SupabaseStore

        return SupabaseStore(settings.supabase_url, settings.supabase_service_role_key.get_secret_value(),
                             timeout_s=settings.supabase_timeout_s)
    raise ConfigurationError("set DATABASE_URL, or SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY")
