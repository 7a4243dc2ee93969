"""Settings, read once at the edge (a function's ``main.py`` or the CLI).

Names follow the platforms' own conventions (``DATABASE_URL``,
``SUPABASE_URL``, ``OPENAI_API_KEY``...). Nothing reads the environment at
import time: call :func:`load_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import SecretStr, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Where the data lives: psycopg locally, supabase-py (PostgREST) in production.
    database_url: str | None = None
    supabase_url: str | None = None
    supabase_service_role_key: SecretStr | None = None

    # The shared secret every agent function requires (bearer token).
    signalsloop_secret: SecretStr | None = None
    # The largest event the schema allows (256 KiB payload, 8 KiB metadata),
    # as pg_net sends it (compact UTF-8), with room for the envelope.
    max_body_bytes: int = 1024 * 1024
    # Requests of one function process that drain due deliveries at once
    # (the others run only the delivery they were rung for).
    drain_concurrency: int = 3
    # A draining request that finds nothing due polls again for this long
    # after its last claim before it stops; while it does, new deliveries of
    # its agent are not rung (the ledger's coalesced doorbell).
    drain_linger_ms: int = 300
    # The supabase-py client: its own httpx client, timeouts inside a lease.
    supabase_timeout_s: float = 15.0

    # AI: OpenAI when a key is set, the offline analyzer otherwise.
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_embedding_model: str = "text-embedding-3-small"
    openai_embedding_dimensions: int = 256
    openai_timeout_s: float = 20.0
    openai_max_retries: int = 1

    # Slack defaults; per-project settings in the database take precedence.
    slack_bot_token: SecretStr | None = None
    slack_channel: str | None = None
    slack_webhook_url: str | None = None
    slack_base_url: str | None = None
    # Verifies Slack's interaction callbacks (functions/slack_actions).
    slack_signing_secret: SecretStr | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """``SIGNALSLOOP_SECRET=`` (a secret created empty, a variable set to
        nothing) is the setting left out, never a value: an empty secret would
        otherwise be a secret, and an empty URL a place."""
        if isinstance(value, str) and not value.strip():
            raise PydanticUseDefault
        return value


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
