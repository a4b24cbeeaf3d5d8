"""A webhook's self-service API (issue 13): its manage token as the bearer.

The counterpart of `/me` for a webhook URL: the token comes from the manage link of any
message posted to the webhook (`/manage/webhook?token=…`) and opens every subscription
of that URL, and no other (any other id is 404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from app.api.deps import SessionDep, SettingsDep, SignerDep
from app.api.errors import error_responses
from app.api.routers.me import add_subscription_routes, manage_bearer
from app.models import Channel
from app.subscriptions import webhook_manage as manage
from app.subscriptions.service import erase_webhook
from app.subscriptions.webhook_schemas import MyWebhook, NewManageLink
from app.urls import WEBHOOK_MANAGE_PATH, manage_url

router = APIRouter(prefix="/webhooks/me", tags=["webhooks"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {**error_responses(401)[401], "description": "Missing or invalid webhook manage token"}
}


_webhook = manage_bearer(
    "WebhookManageToken",
    "The opaque token of a webhook's manage link (`/manage/webhook?token=…`), carried by "
    "every message posted to the webhook. Anything else is 401.",
    lambda session, _settings, signer, token: manage.url_of(session, signer, token),
    manage.InvalidWebhookManageToken,
)
WebhookDep = Annotated[str, Depends(_webhook)]


@router.get(
    "",
    response_model=MyWebhook,
    summary="The webhook's subscriptions",
    responses=_UNAUTHORIZED,
)
async def get_webhook(url: WebhookDep, session: SessionDep) -> MyWebhook:
    return await manage.my_webhook(session, url)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase every row about the webhook",
    description="Deletes every subscription of the webhook URL and their logs; the "
    "token stops working.",
    responses={**_UNAUTHORIZED, **error_responses(429)},
)
async def delete_webhook(url: WebhookDep, session: SessionDep) -> Response:
    await erase_webhook(session, url)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/link",
    response_model=NewManageLink,
    summary="Replace the webhook's manage link",
    description="Every manage link of the webhook signed until now stops working (this "
    "token too); the answer carries the new one, which is also posted to the webhook.",
    responses={**_UNAUTHORIZED, **error_responses(429)},
)
async def replace_link(
    url: WebhookDep, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> NewManageLink:
    token = await manage.replace_links(session, settings, signer, url)
    link = manage_url(settings.public_url, token, path=WEBHOOK_MANAGE_PATH)
    return NewManageLink(token=token, manage_url=link)


add_subscription_routes(
    router,
    _webhook,
    manage.my_webhook,
    MyWebhook,
    channel=Channel.webhook,
    noun="the webhook",
    unauthorized=_UNAUTHORIZED,
)
