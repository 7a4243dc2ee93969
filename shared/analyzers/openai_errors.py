"""OpenAI SDK exceptions mapped onto the error taxonomy (retriable or not,
with the server's Retry-After hint), kept apart from the adapter itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import (
    ConfigurationError,
    PermanentError,
    RateLimited,
    SignalsLoopError,
    TransientError,
    parse_retry_after,
)

if TYPE_CHECKING:
    from openai import APIStatusError


def map_openai_error(error: BaseException) -> SignalsLoopError | None:
    """The taxonomy's error for an ``openai`` exception, or ``None`` if not one of its."""
    import openai

    if isinstance(error, openai.APIStatusError):
        return _map_status(error)
    if isinstance(error, openai.APITimeoutError):
        return TransientError("OpenAI request timed out")
    if isinstance(error, openai.APIConnectionError):
        return TransientError(f"cannot reach OpenAI: {error.__cause__ or error}")
    if isinstance(error, openai.LengthFinishReasonError | openai.ContentFilterFinishReasonError):
        return PermanentError(f"OpenAI answer unusable: {error}")
    if isinstance(error, openai.OpenAIError):
        return PermanentError(f"OpenAI: {error}")
    return None


def _map_status(error: APIStatusError) -> SignalsLoopError:
    status: int = error.status_code
    headers = error.response.headers
    retry_after = parse_retry_after(headers.get("retry-after"))
    if "retry-after-ms" in headers:  # OpenAI's finer-grained hint wins
        retry_after = (parse_retry_after(headers["retry-after-ms"]) or 0.0) / 1000
    text = f"OpenAI {status} ({error.code or 'no code'}): {error.message[:300]}"
    if status == 429 and error.code != "insufficient_quota":
        return RateLimited(text, retry_after=retry_after)
    if status >= 500 or status in (408, 409):
        return TransientError(text, retry_after=retry_after)
    if status in (401, 403, 404, 429):  # bad key, no access, unknown model/URL, no quota
        return ConfigurationError(text)
    return PermanentError(text)
