"""Subscription request and response models (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas import Email, StrictModel, Username, with_example
from app.subscriptions.me_schemas import EventKind, Events, Filters


class WebhookIn(StrictModel):
    url: str = Field(
        max_length=2000,
        description="An https URL: a Discord or Slack incoming webhook, or your own endpoint",
        examples=["https://discord.com/api/webhooks/123456/abcdef"],
    )
    format: Literal["discord", "slack", "json", "ntfy"] = Field(
        description="`json` posts the signed event documented under `webhooks`; `ntfy` "
        "posts to an ntfy topic URL (`https://ntfy.sh/<topic>` or your own server): "
        "plain text with Title, Click, Tags and Priority headers",
        examples=["discord"],
    )


class SubscribeRequest(StrictModel):
    email: Email | None = None
    webhook: WebhookIn | None = Field(
        default=None, description="Instead of `email`: post alerts to a webhook"
    )
    username: Username
    filters: Filters | None = Field(
        default=None,
        description="Which sessions notify (default: bullet, blitz, rapid; rated or not). "
        "Applies to a new subscription or one awaiting confirmation.",
    )
    events: Events | None = Field(
        default=None,
        description="Which events alert: `session` and/or `stream` (default: both). "
        "Applies to a new subscription or one awaiting confirmation.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "fan@example.com", "username": "hikaru"},
                {
                    "email": "fan@example.com",
                    "username": "hikaru",
                    "filters": {"time_classes": ["blitz", "rapid"], "rated_only": True},
                },
                {"email": "fan@example.com", "username": "hikaru", "events": ["stream"]},
                {
                    "webhook": {
                        "url": "https://discord.com/api/webhooks/123456/abcdef",
                        "format": "discord",
                    },
                    "username": "hikaru",
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _one_recipient(self) -> SubscribeRequest:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give either `email` or `webhook`")
        return self

    def address(self) -> tuple[str, dict[str, Any]]:
        """The channel asked for and what was given for it (its `check_address` input)."""
        if self.webhook is not None:
            return "webhook", self.webhook.model_dump()
        return "email", {"email": self.email}


class SubscriptionStatus(BaseModel):
    status: Literal["pending_confirmation", "active"] = Field(examples=["pending_confirmation"])
    secret: str | None = Field(
        default=None,
        description="Webhooks of format `json` only, shown once: the `whsec_` secret that "
        "signs every delivery (Standard Webhooks)",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class ConfirmResult(BaseModel):
    model_config = with_example({"status": "active", "username": "hikaru"})

    status: Literal["active"] = "active"
    username: str


class UnsubscribeResult(BaseModel):
    model_config = with_example({"status": "unsubscribed", "username": "hikaru"})

    status: Literal["unsubscribed"] = "unsubscribed"
    username: str


class SubscriptionOut(BaseModel):
    """Admin view of a subscription: this one carries the address."""

    model_config = with_example(
        {
            "id": 42,
            "email": "fan@example.com",
            "username": "hikaru",
            "events": ["session", "stream"],
            "is_active": True,
            "confirmed_at": "2026-11-02T18:04:11Z",
            "created_at": "2026-11-02T18:01:37Z",
            "updated_at": "2026-11-02T18:04:11Z",
            "consent_ip": "203.0.113.7",
            "consent_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
        from_attributes=True,
    )

    id: int
    channel: Literal["email", "webhook"] = "email"
    email: str | None
    webhook_url: str | None = None
    webhook_format: Literal["discord", "slack", "json", "ntfy"] | None = None
    username: str
    events: list[EventKind]
    is_active: bool
    confirmed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    consent_ip: str | None
    consent_user_agent: str | None


class EraseRequest(StrictModel):
    email: Email

    model_config = with_example({"email": "fan@example.com"})


class Accepted(BaseModel):
    model_config = with_example(
        {"status": "accepted", "detail": "If we hold data about this address, we sent it a link."}
    )

    status: Literal["accepted"] = "accepted"
    detail: str
