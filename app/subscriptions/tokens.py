"""Signed, expiring tokens for links in emails, each bound to one subscription and purpose."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, Serializer, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from app.errors import InvalidToken


class Purpose(StrEnum):
    confirm = "confirm"
    unsubscribe = "unsubscribe"
    erase = "erase"
    manage = "manage"  # the manage link: every control of one address (issue 12)
    # The manage link of a webhook: every control of one webhook URL (issue 13). Its own
    # salt, so an address's manage token never opens a webhook's page, nor the reverse.
    webhook_manage = "webhook-manage"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: int | str  # the subscription id
    email_digest: str


def email_digest(email: str) -> str:
    """The address is not put in links in clear; a short digest binds the token to it."""
    return hashlib.sha256(email.lower().encode()).hexdigest()[:16]


class _Serializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed tokens, without trying zlib on every payload: ours
    are a few dozen bytes that compression never shortens (the library then writes them
    uncompressed anyway), and the attempt was most of the cost of signing one. Tokens
    are the same bytes; loading still accepts compressed ones."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class TokenSigner:
    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key
        # Built once per purpose: delivery signs two tokens per email.
        self._serializers: dict[Purpose, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            # A distinct salt per purpose: an unsubscribe token can never confirm, and so on.
            serializer = _Serializer(self._secret, salt=f"chesscom-helper.{purpose}")
            self._serializers[purpose] = serializer
        return serializer

    def sign(self, purpose: Purpose, subject: int | str, email: str) -> str:
        return self._serializer(purpose).dumps({"s": subject, "e": email_digest(email)})

    def is_genuine(self, purpose: Purpose, token: str) -> bool:
        """True when we signed `token` for `purpose`, expired or not (no database lookup)."""
        if not token or len(token) > 1000:
            return False
        try:
            self._serializer(purpose).loads(token)
        except BadSignature:
            return False
        return True

    def verify(self, purpose: Purpose, token: str, *, max_age: int | None) -> TokenClaims:
        """The claims of a token we signed for `purpose`; `max_age=None`: no age limit."""
        if not token or len(token) > 1000:
            raise InvalidToken()
        try:
            data = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise InvalidToken("This link has expired") from exc
        except BadSignature as exc:
            raise InvalidToken() from exc
        if not isinstance(data, dict) or "s" not in data or "e" not in data:
            raise InvalidToken()
        subject = data["s"]
        if not isinstance(subject, int | str) or not isinstance(data["e"], str):
            raise InvalidToken()
        return TokenClaims(subject=subject, email_digest=data["e"])
