"""Notification logs (admin), filtered and paginated (SPEC §4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import SessionDep
from app.api.errors import error_responses
from app.api.params import Limit, Offset
from app.api.security import AdminDep
from app.notifications import service
from app.notifications.schemas import NotificationOut, Status
from app.notifications.service import LogFilter
from app.schemas import USERNAME_PATTERN, DateTime, Email, Page

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
    email: Annotated[Email | None, Query(description="Only rows of this address")] = None,
    status: Status | None = None,
    since: Annotated[
        DateTime | None,
        Query(description="Only rows created at or after this RFC 3339 date-time"),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[NotificationOut]:
    wanted = LogFilter(username=username, email=email, status=status, since=since)
    rows, total = await service.list_logs(session, wanted, limit=limit, offset=offset)
    items = [
        NotificationOut.model_validate(
            {
                **{c: getattr(r.log, c) for c in _LOG_FIELDS},
                "email": r.email,
                "webhook_url": r.webhook_url,
                "username": r.username,
                "event_id": r.event_key,
            }
        )
        for r in rows
    ]
    return Page[NotificationOut](items=items, total=total, limit=limit, offset=offset)


_LOG_FIELDS = [
    f
    for f in NotificationOut.model_fields
    if f not in {"email", "webhook_url", "username", "event_id"}
]
