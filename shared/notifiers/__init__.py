"""Notifier adapters, chosen by configuration (nothing is built at import time)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from shared.ports import Notifier
from shared.settings import Settings, load_settings

ProjectConfig = Mapping[str, object]


def build_notifier(
    config: Settings | ProjectConfig, settings: Settings | None = None
) -> Notifier | None:
    """A :class:`~shared.notifiers.slack.SlackNotifier`, or ``None`` when Slack is
    not configured (the notify agent then records the message without sending).

    ``config`` is either the process :class:`Settings` or a project's config, a
    dict with optional ``slack_bot_token``, ``slack_channel`` and
    ``slack_webhook_url``. Project keys win; missing ones fall back to
    ``settings`` (default: :func:`load_settings`). A project that names its own
    transport (a token or a webhook) never mixes in the other default transport.
    """
    project: ProjectConfig = {}
    if isinstance(config, Settings):
        settings = config
    else:
        settings, project = settings or load_settings(), config
    token = _text(project.get("slack_bot_token"))
    webhook = _text(project.get("slack_webhook_url"))
    channel = _text(project.get("slack_channel")) or settings.slack_channel
    if not token and not webhook:
        token = _text(settings.slack_bot_token)
        webhook = settings.slack_webhook_url or None
    if not token and not webhook:
        return None

    from shared.notifiers.slack import SlackNotifier

    if token:
        return SlackNotifier(bot_token=token, channel=channel, base_url=settings.slack_base_url)
    return SlackNotifier(webhook_url=webhook)


def _text(value: object) -> str | None:
    """A non-empty string from a plain or secret value."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return (value.strip() or None) if isinstance(value, str) else None
