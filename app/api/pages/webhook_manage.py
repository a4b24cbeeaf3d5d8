"""A webhook's manage page (issue 13): the link in every message posted to the webhook.

The same controls as an address's `/manage` for each player the webhook follows (pause,
resume, time classes, rated only, unsubscribe), and "erase this webhook". Server-rendered
with the site's templates, CSRF-protected forms, no script; the rules are the services'
(app.subscriptions.me with channel `webhook`, app.subscriptions.webhook_manage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SignerDep
from app.api.pages.site import _DONE, ManageVisit, _page, add_manage_routes, link_refused
from app.api.ratelimit import rate_limit
from app.config import Settings
from app.models import Channel
from app.models.subscription import TIME_CLASSES
from app.subscriptions import webhook_manage as manage
from app.subscriptions.service import erase_webhook
from app.tokens import TokenSigner
from app.urls import WEBHOOK_MANAGE_PATH, manage_target

router = APIRouter(include_in_schema=False, dependencies=[Depends(rate_limit)])

_NOTICES = {
    **_DONE,
    "new_link": "Replaced: the links posted until now no longer work. This page has the "
    "new one, and we posted it to the channel.",
}


@dataclass(frozen=True, slots=True)
class WebhookVisit(ManageVisit):
    """A request on a webhook's manage page or one of its forms, its link verified;
    `address` is the webhook URL (never shown: see app.subscriptions.webhook_manage)."""

    channel = Channel.webhook
    path = WEBHOOK_MANAGE_PATH
    erased = (
        "This webhook has been erased",
        "We hold no subscription or delivery record for it any more, and post nothing more to it.",
    )

    async def page(
        self, *, done: str = "", error: str | None = None, status: int = 200
    ) -> HTMLResponse:
        return _page(
            self.request,
            self.settings,
            "webhook_manage.html",
            status,
            hook=await manage.my_webhook(self.session, self.address),
            query=urlencode({"token": self.token}),
            manage_path=self.path,
            about="Post about",
            notice=_NOTICES.get(done),
            error=error,
            time_classes=list(TIME_CLASSES),
        )

    async def erase_all(self) -> None:
        await erase_webhook(self.session, self.address)

    @staticmethod
    async def recipient_of(
        session: AsyncSession, settings: Settings, signer: TokenSigner, token: str
    ) -> str:
        return await manage.url_of(session, signer, token)

    @staticmethod
    def refused(request: Request, settings: Settings) -> HTMLResponse:
        return link_refused(
            request,
            settings,
            "This is not a manage link we posted to a webhook, or everything about "
            "that webhook has been erased.",
            "Open the manage link of the newest message in your channel.",
        )


WebhookVisitDep = Annotated[WebhookVisit, add_manage_routes(router, WebhookVisit)]


@router.post(WEBHOOK_MANAGE_PATH + "/new-link", response_class=HTMLResponse)
async def replace_link(visit: WebhookVisitDep, signer: SignerDep) -> Response:
    await visit.form()
    token = await manage.replace_links(visit.session, visit.settings, signer, visit.address)
    target = manage_target(token, path=WEBHOOK_MANAGE_PATH, done="new_link")
    return RedirectResponse(target, status_code=303)
