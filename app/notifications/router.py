"""Notification logs (admin), filtered and paginated (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import EmailStr
from sqlalchemy import func, select

from app.deps import SessionDep
from app.http_errors import error_responses
from app.models import EmailSubscription, NotificationLog, Player
from app.notifications.schemas import NotificationOut, Status
from app.schemas import USERNAME_PATTERN, Limit, Offset, Page, canonical_email
from app.security import AdminDep

router = APIRouter(prefix="/notifications", tags=["admin"])


@router.get(
    "",
    response_model=Page[NotificationOut],
    summary="List notification logs (admin)",
    responses=error_responses(401, 422),
)
async def list_notifications(
    session: SessionDep,
    _admin: AdminDep,
    username: Annotated[str | None, Query(pattern=USERNAME_PATTERN)] = None,
    email: Annotated[EmailStr | None, Query(max_length=254)] = None,
    status: Status | None = None,
    since: Annotated[datetime | None, Query(description="Only rows created at or after")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[NotificationOut]:
    base = (
        select(NotificationLog, EmailSubscription.email, Player.username)
        .join(EmailSubscription, EmailSubscription.id == NotificationLog.subscription_id)
        .join(Player, Player.player_id == EmailSubscription.player_id)
    )
    if username:
        base = base.where(Player.username == username.lower())
    if email:
        try:
            wanted = canonical_email(email)
        except ValueError:  # a form we never store: nothing can match
            wanted = email.lower()
        base = base.where(EmailSubscription.email == wanted)
    if status:
        base = base.where(NotificationLog.status == status)
    if since:
        base = base.where(NotificationLog.created_at >= since)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.execute(
        base.order_by(NotificationLog.created_at.desc(), NotificationLog.id.desc())
        .limit(limit)
        .offset(offset)
    )
    items = [
        NotificationOut.model_validate(
            {**{c: getattr(log, c) for c in _LOG_FIELDS}, "email": addr, "username": user}
        )
        for log, addr, user in rows.all()
    ]
    return Page[NotificationOut](items=items, total=total, limit=limit, offset=offset)


_LOG_FIELDS = [f for f in NotificationOut.model_fields if f not in {"email", "username"}]
