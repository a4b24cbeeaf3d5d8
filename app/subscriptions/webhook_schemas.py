"""Response models of a webhook's self-service API (`/webhooks/me`, issue 13)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.subscriptions.me_schemas import _MY_SUBSCRIPTION_EXAMPLE, MySubscription

_SUBSCRIPTION_EXAMPLE: dict[str, Any] = {**_MY_SUBSCRIPTION_EXAMPLE, "format": "discord"}


class MyWebhookSubscription(MySubscription):
    model_config = ConfigDict(json_schema_extra={"examples": [_SUBSCRIPTION_EXAMPLE]})

    format: Literal["discord", "slack", "json", "ntfy"] = Field(description="The body posted")


class MyWebhook(BaseModel):
    """Every subscription of one webhook URL: what its manage link controls."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"webhook": "https://discord.com/…", "subscriptions": [_SUBSCRIPTION_EXAMPLE]}
            ]
        }
    )

    webhook: str = Field(
        description="The webhook's scheme and host only: the full URL is a credential "
        "(anyone holding a Discord or Slack webhook URL can post to the channel) and is "
        "never shown back."
    )
    subscriptions: list[MyWebhookSubscription]


class NewManageLink(BaseModel):
    """A webhook's replacement manage link: the links signed before it no longer work."""

    token: str = Field(description="The new opaque manage token (the bearer from now on)")
    manage_url: str = Field(examples=["https://helper.example.org/manage/webhook?token=..."])
