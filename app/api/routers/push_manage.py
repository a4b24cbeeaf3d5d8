"""A browser's push self-service API (issue 20 item 6): its push manage token as the bearer.

The counterpart of `/me` for one browser: the token is the `manage_token` of the answer
to `POST /subscriptions` with `push` (kept by the page in the browser), and opens every
subscription of that browser's push endpoint, and no other (any other id is 404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from app.api.deps import SessionDep
from app.api.errors import error_responses
from app.api.routers.me import add_subscription_routes, manage_bearer
from app.models import Channel
from app.subscriptions import push_manage as manage
from app.subscriptions.push_schemas import MyPush

router = APIRouter(prefix="/push/me", tags=["push"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {**error_responses(401)[401], "description": "Missing or invalid push manage token"}
}

_browser = manage_bearer(
    "PushManageToken",
    "The opaque `manage_token` answered to `POST /subscriptions` with `push`, which the "
    "page keeps in the browser. Anything else is 401.",
    manage.endpoint_of,
    manage.InvalidPushManageToken,
)
BrowserDep = Annotated[str, Depends(_browser)]


@router.get(
    "",
    response_model=MyPush,
    summary="The browser's push subscriptions",
    responses=_UNAUTHORIZED,
)
async def get_push(endpoint: BrowserDep, session: SessionDep) -> MyPush:
    return await manage.my_push(session, endpoint)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase every row about the browser",
    description="Deletes every push subscription of the browser and their logs; the "
    "token stops working.",
    responses={**_UNAUTHORIZED, **error_responses(429)},
)
async def delete_push(endpoint: BrowserDep, session: SessionDep) -> Response:
    await manage.erase_push(session, endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


add_subscription_routes(
    router,
    _browser,
    manage.my_push,
    MyPush,
    channel=Channel.push,
    noun="the browser",
    unauthorized=_UNAUTHORIZED,
)
