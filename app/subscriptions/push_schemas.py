"""Response model of a browser's push self-service API (`/push/me`, issue 20 item 6)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.subscriptions.me_schemas import _MY_SUBSCRIPTION_EXAMPLE, MySubscription


class MyPush(BaseModel):
    """Every subscription of one browser's push endpoint: what its manage token controls."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"push_service": "fcm.googleapis.com", "subscriptions": [_MY_SUBSCRIPTION_EXAMPLE]}
            ]
        }
    )

    push_service: str = Field(
        description="The host of the browser's push service only: the endpoint URL is "
        "never shown back."
    )
    subscriptions: list[MySubscription] = Field(
        description="Every subscription of this browser, unsubscribed ones with `active: false`"
    )
