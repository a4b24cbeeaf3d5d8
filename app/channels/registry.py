"""The channels this service delivers through: one registration line per channel.

Adding a channel is one module under ``app/channels/`` (a :class:`~app.channels.base.
Channel` subclass), its templates and tests, and one line in :data:`CHANNELS`. The
pipeline and the subscription domain find channels here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.channels.base import Channel
from app.channels.email import EmailChannel
from app.channels.push import PushChannel
from app.channels.telegram import TelegramChannel
from app.channels.webhook import WebhookChannel
from app.config import Settings
from app.tokens import TokenSigner

AnyChannel = Channel[Any, Any]

# name (the subscriptions' `channel` value) -> the channel's class.
CHANNELS: dict[str, type[AnyChannel]] = {
    EmailChannel.name: EmailChannel,
    WebhookChannel.name: WebhookChannel,
    PushChannel.name: PushChannel,
    TelegramChannel.name: TelegramChannel,
}


def build_channels(
    settings: Settings,
    signer: TokenSigner,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, AnyChannel]:
    """One instance of every registered channel. ``overrides`` gives a channel's
    optional parts by name (e.g. ``{"email": {"mailer": ...}}``: a test's mail server)."""
    overrides = overrides or {}
    return {
        name: cls(settings, signer, **overrides.get(name, {}))  # type: ignore[call-arg]
        for name, cls in CHANNELS.items()
    }


def subscription_columns() -> tuple[str, ...]:
    """Every subscription column some channel's rows need (the claim reads these)."""
    seen: dict[str, None] = {}
    for cls in CHANNELS.values():
        seen.update(dict.fromkeys(cls.columns))
    return tuple(seen)
