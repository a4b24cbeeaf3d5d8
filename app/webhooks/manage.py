"""Managing a webhook after subscribing (issue 13 item 1): pause, filters, unsubscribe.

A webhook has no address to mail a manage link to, so every message posted to it (the
verification message and each alert, in all three formats) carries one: the link of
`WEBHOOK_MANAGE_PATH` with a token signed for `Purpose.webhook_manage`. As an address's
manage token opens every subscription of the address, this one opens every subscription
of the webhook URL (one channel following several players), and nothing else.

Why the token has no age limit: the link lives in a channel, not in a mailbox one can
ask again. A paused webhook gets no message, so the newest link it holds may be months
old, and an expiring link would leave it paused for good. Each message still carries a
freshly signed link. The token stops working when the rows it names are erased (by the
page, `DELETE /webhooks/me`, or an admin erasing the URL).

Whoever reads the channel can open the page, as they can follow the unsubscribe link.
The page never shows the webhook URL itself: for Discord and Slack the URL is the
credential that posts to the channel, so only its host is shown.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidToken, Unauthorized
from app.models import Channel, EmailSubscription
from app.subscribers.service import my_subscription, subscriptions_of
from app.subscriptions.tokens import Purpose, TokenSigner, email_digest
from app.webhooks.schemas import MyWebhook, MyWebhookSubscription


class InvalidWebhookManageToken(Unauthorized):
    default_detail = (
        "Missing or invalid webhook manage token; use the manage link of a message "
        "posted to the webhook"
    )


def sign_webhook_manage_token(signer: TokenSigner, subscription_id: int, url: str) -> str:
    """The token of a webhook's manage link: bound to its URL via one of its subscriptions."""
    return signer.sign(Purpose.webhook_manage, subscription_id, url)


async def url_of(session: AsyncSession, signer: TokenSigner, token: str) -> str:
    """The webhook URL a manage token is for; InvalidWebhookManageToken when it is forged,
    not a webhook manage token, or the rows it was bound to are erased."""
    try:
        claims = signer.verify(Purpose.webhook_manage, token, max_age=None)
    except InvalidToken as exc:
        raise InvalidWebhookManageToken() from exc
    if not isinstance(claims.subject, int):
        raise InvalidWebhookManageToken()
    url = await session.scalar(
        select(EmailSubscription.webhook_url).where(
            EmailSubscription.id == claims.subject,
            EmailSubscription.channel == Channel.webhook,
        )
    )
    if url is None or email_digest(url) != claims.email_digest:
        raise InvalidWebhookManageToken()
    return url


def shown_target(url: str) -> str:
    """What the page and the API show of a webhook URL: its scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


async def my_webhook(session: AsyncSession, url: str) -> MyWebhook:
    rows = await subscriptions_of(session, url, Channel.webhook)
    return MyWebhook(
        webhook=shown_target(url),
        subscriptions=[
            MyWebhookSubscription(
                **my_subscription(sub, username).model_dump(), format=sub.webhook_format or ""
            )
            for sub, username in rows
        ],
    )
