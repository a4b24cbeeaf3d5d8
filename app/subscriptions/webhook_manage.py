"""Managing a webhook after subscribing (issue 13 item 1): pause, filters, unsubscribe.

A webhook has no address to mail a manage link to, so every message posted to it (the
verification message and each alert, in all three formats) carries one: the link of
`WEBHOOK_MANAGE_PATH` with a token signed for `Purpose.webhook_manage`. As an address's
manage token opens every subscription of the address, this one opens every subscription
of the webhook URL (one channel following several players), and nothing else.

Why the token has no age limit: the link lives in a channel, not in a mailbox one can
ask again. A paused webhook gets no message, so the newest link it holds may be months
old, and an expiring link would leave it paused for good. Each message still carries a
freshly signed link. Links are revoked instead: "replace the link" (`replace_links`)
makes every link signed before it stop working (tokens carry their signing second,
compared with `manage_links_since`), gives the one who asked a new link and posts it
to the channel. A token also stops working when the rows it names are erased (by the
page, `DELETE /webhooks/me`, or an admin erasing the URL).

Whoever reads the channel can open the page, as they can follow the unsubscribe link.
The page never shows the webhook URL itself: for Discord and Slack the URL is the
credential that posts to the channel, so only its host is shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import InvalidToken, Unauthorized
from app.models import Channel, EmailSubscription, NotificationType
from app.subscriptions.me import my_subscription, subscriptions_of
from app.subscriptions.service import request_message
from app.subscriptions.webhook_schemas import MyWebhook, MyWebhookSubscription
from app.tokens import Purpose, TokenSigner, email_digest


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
    row = (
        await session.execute(
            select(EmailSubscription.webhook_url, EmailSubscription.manage_links_since).where(
                EmailSubscription.id == claims.subject,
                EmailSubscription.channel == Channel.webhook,
            )
        )
    ).first()
    if row is None or row.webhook_url is None:
        raise InvalidWebhookManageToken()
    url: str = row.webhook_url
    since: datetime | None = row.manage_links_since
    if email_digest(url) != claims.email_digest:
        raise InvalidWebhookManageToken()
    if since is not None and (claims.issued_at is None or claims.issued_at < since):
        raise InvalidWebhookManageToken("This link was replaced; use the newest one")
    return url


async def replace_links(
    session: AsyncSession, settings: Settings, signer: TokenSigner, url: str
) -> str:
    """Revoke every manage link of the webhook signed until now; the new token.

    The channel gets the new link too (capped per URL and day like every post we are
    asked for), so that whoever reads it keeps the way to the settings. Revocation is to
    the second (tokens carry their signing second): a link signed in the same second
    as the replacement, a moment before it, still works."""
    since = datetime.now(UTC).replace(microsecond=0)
    await session.execute(
        update(EmailSubscription)
        .where(EmailSubscription.webhook_url == url)
        .values(manage_links_since=since)
    )
    rows = [sub for sub, _ in await subscriptions_of(session, url, Channel.webhook)]
    deliverable = [s for s in rows if s.is_active and s.confirmed_at is not None]
    if deliverable:
        await request_message(session, settings, deliverable[0], NotificationType.manage_link)
    return sign_webhook_manage_token(signer, min(s.id for s in rows), url)


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
