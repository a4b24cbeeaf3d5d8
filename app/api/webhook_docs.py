"""The outgoing events in the OpenAPI document's ``webhooks`` section (OpenAPI 3.1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header
from pydantic import BaseModel, Field

from app.webhooks.events import (
    LiveMatchEvent,
    ManageLinkEvent,
    StreamStartedEvent,
    VerificationEvent,
)

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
message with embeds (`{"content", "embeds"}`) or Slack Block Kit (`{"text", "blocks"}`);
format `ntfy` as a plain-text ntfy message (`Title`, `Click`, `Tags`, `Priority` headers).
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


# The outgoing events: name, model, summary, what the description adds before _SIGNED.
EVENTS: tuple[tuple[str, type[BaseModel], str, str], ...] = (
    (
        "live_match.started",
        LiveMatchEvent,
        "A tracked player started playing live chess",
        "A session on Chess.com (its finished games) or on Lichess (the game just started, "
        "`in_progress`, its `url` to watch it live). Sent to subscriptions whose `events` "
        "include `session`.\n",
    ),
    (
        "stream.started",
        StreamStartedEvent,
        "A tracked player went live on a stream",
        "`data.stream.url` is the live stream (Chess.com's streamer list: the main live "
        "platform's URL; Lichess: the player's Lichess streamer page). Sent to "
        "subscriptions whose `events` include `stream`.\n",
    ),
    (
        "subscription.verification",
        VerificationEvent,
        "Confirm a new webhook subscription",
        "Posted once to a new subscription's URL. Nothing else is sent until a person opens "
        "`data.links.confirm` and presses its button.\n",
    ),
    (
        "subscription.manage_link",
        ManageLinkEvent,
        "The webhook's manage link, again",
        "Posted when an active webhook is subscribed again: `data.links.manage` opens its "
        "settings (at most a few a day per URL).\n",
    ),
)


def install_webhook_docs(app: FastAPI) -> None:
    """Declare the outgoing events (documentation only: these routes never run)."""
    for name, model, summary, preface in EVENTS:
        _document(app, name, model, summary, preface + _SIGNED)


def _document(
    app: FastAPI, name: str, model: type[BaseModel], summary: str, description: str
) -> None:
    def event(body: BaseModel, headers: Signed) -> None:
        """Documentation only."""

    event.__annotations__["body"] = model  # the documented body: this event's model
    event.__name__ = name.replace(".", "_")  # the operation id stays the event's name
    app.webhooks.post(
        name, summary=summary, description=description, tags=["webhooks"], status_code=204
    )(event)
