"""Subscription request and response models (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import Email, StrictModel, Username, with_example
from app.subscribers.schemas import Filters


class SubscribeRequest(StrictModel):
    email: Email
    username: Username
    filters: Filters | None = Field(
        default=None,
        description="Which sessions notify (default: bullet, blitz, rapid; rated or not). "
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
            ]
        }
    )


class SubscriptionStatus(BaseModel):
    status: Literal["pending_confirmation", "active"] = Field(examples=["pending_confirmation"])


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
    email: str
    username: str
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
