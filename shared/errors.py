"""One error taxonomy for the whole backbone.

Every error the runtime can meet is a :class:`SignalsLoopError`. Its
``is_retriable`` flag decides what happens to a delivery (failed and retried
later, or dead-lettered at once) and its ``http_status`` what the function
answers; :func:`http_status_for` is the one place that mapping happens.
"""

from __future__ import annotations

import email.utils
import math
import time


class SignalsLoopError(Exception):
    """Base of every error the backbone raises on purpose."""

    is_retriable: bool = False
    # Infrastructure failures (timeouts, 5xx, unreachable) count against an
    # agent's circuit; failures caused by one event's data never do, so one
    # tenant cannot open the circuit for every tenant.
    is_infrastructure: bool = False
    http_status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body


class Unauthorized(SignalsLoopError):
    http_status = 401
    code = "unauthorized"


class BadRequest(SignalsLoopError):
    """The request itself is wrong (malformed payload); nothing was written."""

    http_status = 400
    code = "bad_request"


class MethodNotAllowed(SignalsLoopError):
    """A function takes POST only (functions-framework routes every method to it)."""

    http_status = 405
    code = "method_not_allowed"


class PayloadTooLarge(SignalsLoopError):
    http_status = 413
    code = "payload_too_large"


class ConfigurationError(SignalsLoopError):
    """A setting is missing or wrong; retrying will not help until it is fixed."""

    code = "configuration_error"


class TransientError(SignalsLoopError):
    """Something outside us failed in a way that may pass (timeouts, 5xx)."""

    is_retriable = True
    is_infrastructure = True
    http_status = 503
    code = "transient_error"


class OutcomeUnknown(TransientError):
    """The request left but no answer came back (a timeout, a reset): it may
    have taken effect. For messages this means "never send again"."""

    code = "outcome_unknown"


class RateLimited(TransientError):
    """An upstream said "slow down"; ``retry_after`` carries its hint in seconds."""

    http_status = 429
    code = "rate_limited"


class PermanentError(SignalsLoopError):
    """The work cannot succeed as asked (a malformed model answer after retries,
    a rejected Slack channel); the delivery is dead-lettered at once."""

    http_status = 422
    code = "permanent_error"


class StoreError(SignalsLoopError):
    """The database refused or failed a call."""

    code = "store_error"

    def __init__(self, message: str, *, retriable: bool, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.is_retriable = retriable
        self.is_infrastructure = retriable
        self.http_status = 503 if retriable else 500
        self.sqlstate = sqlstate


class InvalidSettings(PermanentError):
    """A project's settings hold a value the agent cannot use: that project's
    delivery is dead-lettered with the reason; other projects are untouched."""

    code = "invalid_settings"


class UnsupportedVersion(PermanentError):
    """An event version newer than this code knows: never processed as current."""

    code = "unsupported_version"


class NotFound(SignalsLoopError):
    http_status = 404
    code = "not_found"


def http_status_for(error: BaseException) -> int:
    """The HTTP status a function answers for ``error`` (unknown errors: 500)."""
    if isinstance(error, SignalsLoopError):
        return error.http_status
    return 500


def is_retriable(error: BaseException) -> bool:
    """Unknown exceptions are treated as retriable: a bug fixed and redeployed
    should get the chance to process the delivery rather than lose it."""
    if isinstance(error, SignalsLoopError):
        return error.is_retriable
    return True


def is_infrastructure(error: BaseException) -> bool:
    """Whether ``error`` says the platform failed (counts against the circuit).
    Unknown exceptions are retried but do not count: they are more often a
    bug or one event's data than the agent's platform."""
    if isinstance(error, SignalsLoopError):
        return error.is_infrastructure
    return isinstance(error, TimeoutError | ConnectionError)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None
