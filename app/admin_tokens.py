"""Admin tokens: ADMIN_TOKEN or one made with the CLI (stored hashed), and who holds one."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import ApiToken

TOKEN_PREFIX = "cch_"


def hash_token(token: str) -> str:
    """Tokens are random and long, so a plain SHA-256 is the right hash (no need to slow it)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def authenticate(session: AsyncSession, settings: Settings, token: str) -> str | None:
    """The name of the admin the token belongs to, or None. Constant-time for ADMIN_TOKEN."""
    if settings.admin_token and hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        return "env:ADMIN_TOKEN"
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    name = await session.scalar(select(ApiToken.name).where(ApiToken.token_hash == digest))
    if name is None:
        return None
    await session.execute(
        update(ApiToken).where(ApiToken.token_hash == digest).values(last_used_at=datetime.now(UTC))
    )
    return name
