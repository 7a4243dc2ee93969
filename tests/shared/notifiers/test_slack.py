"""SlackNotifier against a fake Slack on loopback: the real slack-sdk, the real wire."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest
from pydantic import SecretStr

from shared.errors import ConfigurationError, PermanentError, RateLimited, TransientError
from shared.notifiers import build_notifier
from shared.notifiers.slack import WEB_API, WEBHOOK, SlackNotifier
from shared.ports import Message
from shared.settings import Settings
from tests.fakes.slack_server import POST_MESSAGE_PATH, WEBHOOK_PATH, FakeSlackServer


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as fake:
        yield fake


@pytest.fixture
def web(slack: FakeSlackServer) -> SlackNotifier:
    return SlackNotifier(bot_token="xoxb-test", channel="#product", base_url=slack.api_base_url,
                         timeout_s=2.0)


@pytest.fixture
def hook(slack: FakeSlackServer) -> SlackNotifier:
    return SlackNotifier(webhook_url=slack.webhook_url, timeout_s=2.0)


def message(text: str = "3 new bugs about export", channel: str | None = None) -> Message:
    return Message(key=f"k-{uuid4()}", project_id=uuid4(), channel=channel, text=text)


# -- Web API ----------------------------------------------------------------------


def test_posts_the_text_to_the_default_channel(slack: FakeSlackServer, web: SlackNotifier) -> None:
    receipt = web.send(message("Spec drafted: *Dark mode*"))

    assert receipt.ok and receipt.transport == WEB_API
    assert receipt.channel == "#product" and receipt.ts == "1700000000.000100"
    (posted,) = slack.posted
    assert posted["channel"] == "#product" and posted["text"] == "Spec drafted: *Dark mode*"
    assert slack.requests[0].header("authorization") == "Bearer xoxb-test"


def test_the_message_channel_wins(slack: FakeSlackServer, web: SlackNotifier) -> None:
    assert web.send(message(channel="C0URGENT")).channel == "C0URGENT"
    assert slack.posted[0]["channel"] == "C0URGENT"


def test_no_channel_at_all_is_a_configuration_error(slack: FakeSlackServer) -> None:
    notifier = SlackNotifier(bot_token="xoxb-test", base_url=slack.api_base_url)
    with pytest.raises(ConfigurationError, match="channel"):
        notifier.send(message())
    assert slack.requests == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [("channel_not_found", PermanentError), ("not_in_channel", PermanentError),
     ("is_archived", PermanentError), ("invalid_auth", ConfigurationError),
     ("token_revoked", ConfigurationError), ("internal_error", TransientError)],
)
def test_slack_refusals(slack: FakeSlackServer, web: SlackNotifier, error: str,
                        expected: type[Exception]) -> None:
    slack.reject(error)
    with pytest.raises(expected, match=error) as caught:
        web.send(message())
    assert type(caught.value) is expected
    assert "xoxb-test" not in str(caught.value)


def test_429_is_rate_limited_with_retry_after(slack: FakeSlackServer, web: SlackNotifier) -> None:
    slack.reject("ratelimited", status=429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        web.send(message())
    assert caught.value.retry_after == 7 and caught.value.is_retriable
    assert len(slack.posted) == 1  # the SDK did not retry on its own


def test_500_is_transient(slack: FakeSlackServer, web: SlackNotifier) -> None:
    slack.fail(500, "upstream exploded", path=POST_MESSAGE_PATH)
    with pytest.raises(TransientError):
        web.send(message())


def test_a_timeout_is_transient(slack: FakeSlackServer) -> None:
    notifier = SlackNotifier(bot_token="xoxb-test", channel="#p", base_url=slack.api_base_url,
                             timeout_s=0.2)
    slack.fail(200, "late", path=POST_MESSAGE_PATH, delay=1.0)
    started = time.monotonic()
    with pytest.raises(TransientError):
        notifier.send(message())
    assert time.monotonic() - started < 1.0


def test_an_unreachable_slack_is_transient() -> None:
    with FakeSlackServer() as gone:
        url = gone.api_base_url
    notifier = SlackNotifier(bot_token="xoxb-test", channel="#p", base_url=url)
    with pytest.raises(TransientError, match="cannot reach"):
        notifier.send(message())


# -- incoming webhook -----------------------------------------------------------------


def test_webhook_posts_the_text(slack: FakeSlackServer, hook: SlackNotifier) -> None:
    receipt = hook.send(message("Weekly digest"))

    assert receipt.ok and receipt.transport == WEBHOOK and receipt.ts is None
    assert slack.webhook_posts == [{"text": "Weekly digest"}]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [(404, "channel_not_found", PermanentError), (400, "invalid_payload", PermanentError),
     (410, "channel_is_archived", PermanentError), (403, "invalid_token", ConfigurationError),
     (404, "no_service", ConfigurationError), (500, "rollup_error", TransientError),
     (503, "", TransientError)],
)
def test_webhook_failures(slack: FakeSlackServer, hook: SlackNotifier, status: int, body: str,
                          expected: type[Exception]) -> None:
    slack.fail(status, body, path=WEBHOOK_PATH)
    with pytest.raises(expected) as caught:
        hook.send(message())
    assert type(caught.value) is expected


def test_webhook_429_is_rate_limited(slack: FakeSlackServer, hook: SlackNotifier) -> None:
    slack.fail(429, "rate_limited", path=WEBHOOK_PATH, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        hook.send(message())
    assert caught.value.retry_after == 7


# -- build_notifier -----------------------------------------------------------------------


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_no_slack_configured_means_no_notifier() -> None:
    assert build_notifier(settings()) is None
    assert build_notifier({}, settings()) is None


def test_settings_bot_token_and_channel(slack: FakeSlackServer) -> None:
    notifier = build_notifier(settings(slack_bot_token=SecretStr("xoxb-env"),
                                       slack_channel="#env", slack_base_url=slack.api_base_url))
    assert notifier is not None
    assert notifier.send(message()).channel == "#env"
    assert slack.requests[0].header("authorization") == "Bearer xoxb-env"


def test_project_channel_overrides_the_default(slack: FakeSlackServer) -> None:
    defaults = settings(slack_bot_token=SecretStr("xoxb-env"), slack_channel="#env",
                        slack_base_url=slack.api_base_url)
    notifier = build_notifier({"slack_channel": "#project"}, defaults)
    assert notifier is not None and notifier.send(message()).channel == "#project"


def test_a_project_webhook_is_not_mixed_with_the_default_token(slack: FakeSlackServer) -> None:
    defaults = settings(slack_bot_token=SecretStr("xoxb-env"), slack_channel="#env")
    notifier = build_notifier({"slack_webhook_url": slack.webhook_url}, defaults)
    assert isinstance(notifier, SlackNotifier) and notifier.transport == WEBHOOK
    notifier.send(message("hi"))
    assert slack.webhook_posts == [{"text": "hi"}]


def test_settings_webhook(slack: FakeSlackServer) -> None:
    notifier = build_notifier(settings(slack_webhook_url=slack.webhook_url))
    assert isinstance(notifier, SlackNotifier) and notifier.transport == WEBHOOK


def test_importing_notifiers_does_not_import_slack_sdk() -> None:
    code = "import sys, shared.notifiers, shared.notifiers.slack; sys.exit('slack_sdk' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_failures_before_the_request_left_are_retriable_after_it_left_unknown() -> None:
    """urllib wraps connect/send failures in URLError (Slack never got the
    message: retry); a timeout or reset while reading the answer may follow a
    post (never re-send)."""
    import http.client
    import urllib.error

    from shared.errors import OutcomeUnknown, TransientError
    from shared.notifiers.slack import _map_exception

    for before in (urllib.error.URLError(TimeoutError("timed out")), urllib.error.URLError(ConnectionRefusedError())):
        mapped = _map_exception(before)
        assert isinstance(mapped, TransientError) and not isinstance(mapped, OutcomeUnknown)
    for after in (TimeoutError("read timed out"), ConnectionResetError(), http.client.RemoteDisconnected("gone")):
        assert isinstance(_map_exception(after), OutcomeUnknown)
