"""A browser's own push subscriptions (issue 20 item 6, SPEC §4, §11): list, pause, remove.

A browser has no inbox to mail a manage link to; what it holds is its push
subscription. "Notify this browser" is answered with a manage token bound to the
browser's push endpoint (`POST /subscriptions` → 201 with `manage_token`), which the
page keeps in the browser (localStorage, app/api/static/push.js). With it as the bearer,
`/push/me` lists every subscription of that endpoint, pauses, resumes, refilters or ends
one, or erases them all; any other subscription id is 404.

Who gets a token: whoever posts the endpoint with its keys. The endpoint is a capability
URL that only the browser, its push service and we know, so presenting it proves
holding the browser's subscription, exactly as it suffices to subscribe that browser.

Why the token has no age limit: like a webhook's (app.subscriptions.webhook_manage), it
lives where it is used and cannot be asked for again by mail. It stops working when the
rows it names are erased (`DELETE /push/me`, an admin erasing the endpoint or the
address it is tied to). The endpoint itself is never shown back: only its push
service's host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Unauthorized
from app.models import Channel, EmailSubscription
from app.subscriptions.me import bound_recipient, my_subscription, subscriptions_of
from app.subscriptions.push_schemas import MyPush
from app.subscriptions.service import erase_where
from app.tokens import Purpose, TokenSigner


class InvalidPushManageToken(Unauthorized):
    default_detail = "Missing or invalid push manage token; subscribe this browser again to get one"


def sign_push_manage_token(signer: TokenSigner, subscription_id: int, endpoint: str) -> str:
    """The token of a browser's push subscriptions: bound to its endpoint via one of its
    subscriptions."""
    return signer.sign(Purpose.push_manage, subscription_id, endpoint)


async def manage_token_for(session: AsyncSession, signer: TokenSigner, endpoint: str) -> str:
    """A manage token for the subscriptions of a stored push endpoint (the answer to
    "Notify this browser"); bound to the endpoint's oldest row, which outlives the others
    as long as any of them (rows are only erased all together)."""
    first = await session.scalar(
        select(func.min(EmailSubscription.id)).where(EmailSubscription.push_endpoint == endpoint)
    )
    if first is None:
        raise LookupError("no subscription of this endpoint")
    return sign_push_manage_token(signer, first, endpoint)


async def tie_to_owner(session: AsyncSession, endpoint: str, owner: str | None) -> None:
    """Keep a browser's subscriptions with their person: with `owner` (subscribed with an
    address's manage token) every subscription of the endpoint belongs to that address
    from now on; without (subscribed anonymously) a new one joins its siblings' owner, if
    they have one, so that a browser once tied stays tied (and is erased with it)."""
    mine = EmailSubscription.push_endpoint == endpoint
    if owner is not None:
        await session.execute(update(EmailSubscription).where(mine).values(owner_email=owner))
        return
    sibling = EmailSubscription.__table__.alias("sibling")
    owned = (
        select(func.min(sibling.c.owner_email))
        .where(sibling.c.push_endpoint == endpoint, sibling.c.owner_email.is_not(None))
        .scalar_subquery()
    )
    await session.execute(
        update(EmailSubscription)
        .where(mine, EmailSubscription.owner_email.is_(None), owned.is_not(None))
        .values(owner_email=owned)
    )


async def endpoint_of(
    session: AsyncSession, _settings: Settings, signer: TokenSigner, token: str
) -> str:
    """The push endpoint a manage token is for; InvalidPushManageToken when it is forged,
    not a push manage token, or the rows it was bound to are erased."""
    endpoint = await bound_recipient(session, signer, Purpose.push_manage, token, Channel.push)
    if endpoint is None:
        raise InvalidPushManageToken()
    return endpoint


def shown_service(endpoint: str) -> str:
    """What is shown of a push endpoint: its push service's host (the whole URL lets
    anyone who holds it ask us about this browser)."""
    return urlsplit(endpoint).hostname or ""


async def my_push(session: AsyncSession, endpoint: str) -> MyPush:
    rows = await subscriptions_of(session, endpoint, Channel.push)
    return MyPush(
        push_service=shown_service(endpoint),
        subscriptions=[my_subscription(sub, username) for sub, username in rows],
    )


async def erase_push(session: AsyncSession, endpoint: str) -> int:
    """Delete every subscription (and, by cascade, log) of a browser's push endpoint."""
    return await erase_where(session, EmailSubscription.push_endpoint == endpoint)
