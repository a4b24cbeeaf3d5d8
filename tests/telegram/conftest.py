"""Telegram tests talk to the loopback Bot API only (the webhook tests' safety net)."""

from tests.webhooks.conftest import loopback_only  # noqa: F401  (autouse)
