"""Notification-log response models (admin only: rows carry addresses)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["pending", "sent", "failed"]


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subscription_id: int
    email: str
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
