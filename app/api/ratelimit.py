"""Rate limits on mutating routes (SPEC §3, §4), with the `limits` library.

Anonymous clients are limited per address, admins per token. A bearer token that does
not authenticate counts as anonymous, so inventing tokens cannot buy more requests.
A POST from an email link (confirm, unsubscribe, erase) carrying a link token we signed
is limited per link instead: mailbox providers send RFC 8058 one-click unsubscribes for
many people from a few shared addresses, and one person confirming several
subscriptions right after subscribing must not be told to wait. Replaying one link is
still limited, and a forged link counts against its sender's address.
Storage comes from RATE_LIMIT_STORAGE_URI (memory by default; Redis so that several
API replicas share one budget).
"""

from __future__ import annotations

import hashlib
import math
import time

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from app.admin_tokens import authenticate
from app.api.net import client_ip
from app.config import Settings
from app.errors import AppError
from app.tokens import Purpose, TokenSigner
from app.urls import LINK_PATHS, MANAGE_PATH

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LINK_ACTIONS: dict[str, Purpose] = {path: purpose for purpose, path in LINK_PATHS.items()}


class RateLimitExceeded(AppError):
    status_code = 429
    default_detail = "Too many requests; slow down"


def async_storage_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.anonymous = parse_many(settings.rate_limit_anonymous)
        self.authenticated = parse_many(settings.rate_limit_authenticated)
        uri = async_storage_uri(settings.rate_limit_storage_uri)
        # limits defaults to coredis for async Redis; we ship redis-py (the [redis] extra).
        options = {"implementation": "redispy"} if uri.startswith("async+redis") else {}
        storage = storage_from_string(uri, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    async def check(self, key: str, items: list[RateLimitItem]) -> None:
        for item in items:
            if not await self.strategy.hit(item, "chesscom-helper", key):
                stats = await self.strategy.get_window_stats(item, "chesscom-helper", key)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimitExceeded(headers={"Retry-After": str(retry)})


async def rate_limit(request: Request) -> None:
    """Router dependency: counts every mutating request against its client's budget."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled or request.method not in MUTATING:
        return
    key, items = f"ip:{client_ip(request)}", limiter.anonymous
    purpose = LINK_ACTIONS.get(request.url.path)
    token = request.query_params.get("token", "")
    if purpose is not None and _signer(request).is_genuine(purpose, token):
        await limiter.check(f"link:{hashlib.sha256(token.encode()).hexdigest()[:32]}", items)
        return
    auth = request.headers.get("authorization", "")
    manage = _manage_token(request, auth)
    if manage is not None:
        # A subscriber managing their address: limited per address link, like an admin.
        await limiter.check(
            f"manage:{hashlib.sha256(manage.encode()).hexdigest()[:32]}", limiter.authenticated
        )
        return
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        factory = request.app.state.session_factory
        async with factory() as session, session.begin():
            name = await authenticate(session, request.app.state.settings, auth[7:].strip())
        if name is not None:
            key, items = f"token:{name}", limiter.authenticated
    await limiter.check(key, items)


# Tokens that manage one recipient's subscriptions: an address's, a webhook's, a
# browser's (push) or a Telegram chat's.
_MANAGE_PURPOSES = (
    Purpose.manage,
    Purpose.webhook_manage,
    Purpose.push_manage,
    Purpose.telegram_manage,
)


def _manage_token(request: Request, auth: str) -> str | None:
    """A genuine manage token carried by the request (`/me`, `/webhooks/me` or
    `/push/me` bearer, or a manage-page form: an address's, a webhook's or a chat's)."""
    token = ""
    if auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    elif request.url.path == MANAGE_PATH or request.url.path.startswith(MANAGE_PATH + "/"):
        token = request.query_params.get("token", "")
    signer = _signer(request)
    if token and any(signer.is_genuine(p, token) for p in _MANAGE_PURPOSES):
        return token
    return None


def _signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer
