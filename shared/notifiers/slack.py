"""The :class:`~shared.ports.Notifier` that posts to Slack.

Two transports: the Web API (bot token + channel, ``chat.postMessage``; the
receipt carries the message ``ts``) or an incoming webhook (a fixed channel, no
``ts``). Failures are mapped onto the error taxonomy: rate limits and outages
are retriable, rejections (unknown channel, bad token) are not.

slack-sdk's own retries are off by default: a retry after a connection reset
may post twice, and the delivery ledger already decides about retrying.
"""

from __future__ import annotations

import http.client
import urllib.error
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.errors import (
    ConfigurationError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    SignalsLoopError,
    TransientError,
    parse_retry_after,
)
from shared.ports import Message, SendReceipt

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.webhook import WebhookClient

WEB_API = "slack-web-api"
WEBHOOK = "slack-webhook"

# Web API ``error`` codes (https://api.slack.com/methods/chat.postMessage).
AUTH_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "no_permission", "missing_scope", "not_allowed_token_type", "team_access_not_granted",
    "ekm_access_denied", "org_login_required",
})
RETRIABLE_ERRORS = frozenset({
    "internal_error", "fatal_error", "service_unavailable", "request_timeout",
})
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
# Incoming-webhook answers (plain-text bodies) that mean the URL itself is wrong.
WEBHOOK_CONFIG_ERRORS = frozenset({
    "invalid_token", "no_service", "no_service_id", "no_team", "team_disabled",
    "action_prohibited",
})


class SlackNotifier:
    def __init__(
        self,
        *,
        bot_token: str | None = None,
        channel: str | None = None,
        webhook_url: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 0,
    ) -> None:
        """With a ``bot_token`` the Web API is used (``base_url`` overrides
        ``https://slack.com/api/``, for tests); otherwise ``webhook_url``."""
        if not bot_token and not webhook_url:
            raise ConfigurationError("Slack needs a bot token (and channel) or a webhook URL")
        self._channel = channel
        self._web: WebClient | None = None
        self._webhook: WebhookClient | None = None
        if bot_token:
            self._web = _web_client(bot_token, base_url, timeout_s, max_retries)
        else:
            self._webhook = _webhook_client(webhook_url or "", timeout_s, max_retries)

    @property
    def transport(self) -> str:
        return WEB_API if self._web is not None else WEBHOOK

    def send(self, message: Message) -> SendReceipt:
        try:
            if self._web is not None:
                return self._post(self._web, message)
            assert self._webhook is not None
            return self._hook(self._webhook, message)
        except SignalsLoopError:
            raise
        except Exception as error:
            raise _map_exception(error) from error

    def _post(self, client: WebClient, message: Message) -> SendReceipt:
        from slack_sdk.errors import SlackApiError

        channel = message.channel or self._channel
        if not channel:
            raise ConfigurationError("no Slack channel for this message or project")
        try:
            response = client.chat_postMessage(channel=channel, text=message.text, blocks=feedback_blocks(message))
        except SlackApiError as error:
            raise _map_api_error(error.response) from error
        return SendReceipt(ok=True, channel=response.get("channel", channel),
                           ts=response.get("ts"), transport=WEB_API)

    def _hook(self, client: WebhookClient, message: Message) -> SendReceipt:
        response = client.send(text=message.text, blocks=feedback_blocks(message))
        if response.status_code != 200:
            raise _map_webhook_error(response.status_code, str(response.body), response.headers)
        return SendReceipt(ok=True, channel=None, ts=None, transport=WEBHOOK)


USEFUL, NOT_USEFUL = "notification_useful", "notification_not_useful"
MAX_SECTION = 3000  # Slack's limit for a section's text


def feedback_blocks(message: Message) -> list[dict[str, Any]] | None:
    """The message as Block Kit with "Useful" / "Not useful" buttons whose
    value is the notification id (functions/slack_actions records the click).
    ``text`` stays the fallback for notifications and old clients."""
    if message.id is None:
        return None
    text = message.text if len(message.text) <= MAX_SECTION else message.text[: MAX_SECTION - 1] + "…"
    value = str(message.id)
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": "signalsloop_feedback", "elements": [
            {"type": "button", "action_id": USEFUL, "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Useful"}},
            {"type": "button", "action_id": NOT_USEFUL, "value": value,
             "text": {"type": "plain_text", "text": "Not useful"}},
        ]},
    ]


def _web_client(token: str, base_url: str | None, timeout_s: float, retries: int) -> WebClient:
    from slack_sdk import WebClient

    options: dict[str, Any] = {"token": token, "timeout": timeout_s,
                               "retry_handlers": _retry_handlers(retries)}
    if base_url:
        options["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    return WebClient(**options)


def _webhook_client(url: str, timeout_s: float, retries: int) -> WebhookClient:
    from slack_sdk.webhook import WebhookClient

    options: dict[str, Any] = {"timeout": timeout_s, "retry_handlers": _retry_handlers(retries)}
    return WebhookClient(url, **options)


def _retry_handlers(retries: int) -> list[Any]:
    """Connection-error retries inside the SDK (none unless asked)."""
    if retries <= 0:
        return []
    from slack_sdk.http_retry import ConnectionErrorRetryHandler

    return [ConnectionErrorRetryHandler(max_retry_count=retries)]


def _map_api_error(response: Any) -> SignalsLoopError:
    """Slack's answer to a failed Web API call (``ok: false`` or an HTTP error)."""
    status: int = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"http_{status}")
    text = f"Slack chat.postMessage failed: {code} (HTTP {status})"
    retry_after = parse_retry_after(_header(response.headers, "retry-after"))
    if status == 429 or code in RATE_LIMIT_ERRORS:
        return RateLimited(text, retry_after=retry_after)
    if status >= 500 or code in RETRIABLE_ERRORS:
        return TransientError(text, retry_after=retry_after)
    if code in AUTH_ERRORS or status in (401, 403):
        return ConfigurationError(text)
    return PermanentError(text)


def _map_webhook_error(status: int, body: str, headers: Mapping[str, Any]) -> SignalsLoopError:
    code = body.strip()[:100] or f"http_{status}"
    text = f"Slack webhook failed: {code} (HTTP {status})"
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    if status == 429:
        return RateLimited(text, retry_after=retry_after)
    if status >= 500:
        return TransientError(text, retry_after=retry_after)
    if code in WEBHOOK_CONFIG_ERRORS or status in (401, 403):
        return ConfigurationError(text)
    return PermanentError(text)


_AMBIGUOUS = (TimeoutError, ConnectionResetError, http.client.RemoteDisconnected, http.client.IncompleteRead)


def _map_exception(error: Exception) -> SignalsLoopError:
    """Errors with no answer from Slack. A timeout or a dropped connection may
    come after Slack posted the message: that is ``OutcomeUnknown``, never
    re-sent. A refused connection is plainly retriable; SDK misuse is not."""
    if isinstance(error, urllib.error.URLError):
        # urllib wraps what fails while connecting or sending the request: Slack
        # never got it whole, so trying again cannot post twice.
        return TransientError(f"cannot reach Slack: {error.reason}")
    if isinstance(error, _AMBIGUOUS):
        # Raised while reading the answer: the request had left, it may have posted.
        return OutcomeUnknown(f"no answer from Slack ({type(error).__name__}); it may have posted")
    if isinstance(error, OSError | http.client.HTTPException):  # URLError is an OSError
        return TransientError(f"cannot reach Slack: {error}")
    return ConfigurationError(f"Slack client: {type(error).__name__}: {error}")


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None
