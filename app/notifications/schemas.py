"""Notification-log response models (admin only: rows carry addresses)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.schemas import with_example

Status = Literal["pending", "sent", "failed", "skipped", "held", "digested"]


class NotificationOut(BaseModel):
    model_config = with_example(
        {
            "id": 1017,
            "subscription_id": 42,
            "email": "fan@example.com",
            "username": "hikaru",
            "event_id": "8f8f6bd0-7a2a-11ef-a1b6-6cfe544c0428",
            "notification_type": "live_match",
            "status": "sent",
            "success": True,
            "attempts": 1,
            "next_attempt_at": "2026-11-21T20:15:02Z",
            "error_message": None,
            "created_at": "2026-11-21T20:15:02Z",
            "sent_at": "2026-11-21T20:15:03Z",
        },
        from_attributes=True,
    )

    id: int
    subscription_id: int
    email: str | None
    webhook_url: str | None = None
    username: str
    event_id: str
    notification_type: str
    status: Status
    success: bool
    attempts: int
    next_attempt_at: datetime | None
    error_message: str | None
    created_at: datetime
    sent_at: datetime | None
