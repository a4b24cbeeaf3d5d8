"""Push tests talk to the loopback push service only (the webhook tests' safety net)."""

from tests.webhooks.conftest import loopback_only  # noqa: F401  (autouse)
