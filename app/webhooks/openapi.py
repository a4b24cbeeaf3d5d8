"""The outgoing events in the OpenAPI document's ``webhooks`` section (OpenAPI 3.1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header
from pydantic import BaseModel, Field

from app.webhooks.events import LiveMatchEvent, VerificationEvent

_SIGNED = """
Sent to subscriptions of format `json`, signed per
[Standard Webhooks](https://www.standardwebhooks.com/): verify `webhook-signature`
(`v1,` + base64 HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the
base64 part of the `whsec_` secret returned once at subscription) with any Standard
Webhooks library, refuse timestamps more than 5 minutes off, and deduplicate on
`webhook-id`: it is the same on every attempt of one message. Answer any 2xx to
acknowledge; 429 (with `Retry-After`) asks for a later retry; 404 or 410 ends the
subscription; anything else is retried with backoff, 5 attempts in all.

Subscriptions of format `discord` and `slack` receive the same event as a Discord
message with embeds (`{"content", "embeds"}`) or Slack Block Kit (`{"text", "blocks"}`).
"""


class SignatureHeaders(BaseModel):
    """The Standard Webhooks headers of every event."""

    webhook_id: str = Field(alias="webhook-id", description="Message id, the same on every attempt")
    webhook_timestamp: str = Field(
        alias="webhook-timestamp", description="Unix seconds of this attempt"
    )
    webhook_signature: str = Field(
        alias="webhook-signature", description="`v1,<base64 HMAC-SHA256>`"
    )


Signed = Annotated[SignatureHeaders, Header()]


def install_webhook_docs(app: FastAPI) -> None:
    """Declare the outgoing events (documentation only: these routes never run)."""

    @app.webhooks.post(
        "live_match.started",
        summary="A tracked player started playing live chess",
        description=_SIGNED,
        tags=["webhooks"],
        status_code=204,
    )
    def live_match_started(body: LiveMatchEvent, headers: Signed) -> None:
        """Documentation only."""

    @app.webhooks.post(
        "subscription.verification",
        summary="Confirm a new webhook subscription",
        description="Posted once to a new subscription's URL. Nothing else is sent until a "
        "person opens `data.links.confirm` and presses its button.\n" + _SIGNED,
        tags=["webhooks"],
        status_code=204,
    )
    def subscription_verification(body: VerificationEvent, headers: Signed) -> None:
        """Documentation only."""
