"""Analyzer adapters, chosen by configuration.

Nothing is built (or heavily imported) at import time: :func:`build_analyzer`
picks the adapter when a function starts handling work.
"""

from __future__ import annotations

from shared.ports import Analyzer
from shared.settings import Settings


def build_analyzer(settings: Settings) -> Analyzer:
    """OpenAI (or a compatible server) when ``OPENAI_API_KEY`` is set, the
    deterministic offline analyzer otherwise."""
    if settings.openai_api_key is not None and settings.openai_api_key.get_secret_value():
        from shared.analyzers.openai_analyzer import OpenAIAnalyzer

        return OpenAIAnalyzer(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            embedding_model=settings.openai_embedding_model,
            embedding_dimensions=settings.openai_embedding_dimensions,
            timeout_s=settings.openai_timeout_s,
            max_retries=settings.openai_max_retries,
        )
    from shared.analyzers.offline import OfflineAnalyzer

    return OfflineAnalyzer()
