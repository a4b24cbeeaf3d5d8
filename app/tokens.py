"""Signed, expiring tokens for links in emails, each bound to one subscription and purpose."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from itsdangerous import (
    BadSignature,
    Serializer,
    SignatureExpired,
    TimestampSigner,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode, int_to_bytes
from itsdangerous.signer import HMACAlgorithm

from app.errors import InvalidToken


class Purpose(StrEnum):
    confirm = "confirm"
    unsubscribe = "unsubscribe"
    erase = "erase"
    manage = "manage"  # the manage link: every control of one address (issue 12)
    # The manage link of a webhook: every control of one webhook URL (issue 13). Its own
    # salt, so an address's manage token never opens a webhook's page, nor the reverse.
    webhook_manage = "webhook-manage"
    # A browser's push subscriptions (issue 20 item 6): the token the browser keeps after
    # "Notify this browser", bound to its push endpoint.
    push_manage = "push-manage"
    # A Telegram chat's subscriptions: the link the bot sends in its /start and /list
    # replies, bound to the chat.
    telegram_manage = "telegram-manage"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: int | str  # the subscription id
    email_digest: str
    # When it was signed (to the second); not part of what the token claims, so two
    # tokens with the same claims compare equal whenever they were signed.
    issued_at: datetime | None = field(default=None, compare=False)


def email_digest(email: str) -> str:
    """The address is not put in links in clear; a short digest binds the token to it."""
    return hashlib.sha256(email.lower().encode()).hexdigest()[:16]


def _compact_json(claims: dict[str, Any]) -> bytes:
    """The JSON itsdangerous writes (compact, not ASCII-escaped); written directly for
    the usual claims (an integer subject and a hex digest), which json.dumps would
    write the same way (tested)."""
    subject, digest = claims["s"], claims["e"]
    if type(subject) is int and _HEX.fullmatch(digest):
        return b'{"s":%d,"e":"%s"}' % (subject, digest.encode("ascii"))
    return json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_HEX = re.compile(r"[0-9a-f]*")


class _Serializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed tokens, without trying zlib on every payload: ours
    are a few dozen bytes that compression never shortens (the library then writes them
    uncompressed anyway), and the attempt was most of the cost of signing one. Tokens
    are the same bytes; loading still accepts compressed ones."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class _Mint:
    """Signs tokens of one purpose as itsdangerous' timed serializer does, byte for byte,
    with its key derived once: the library derives the key, builds a signer and an HMAC
    object for every token, which cost more than the HMAC itself. Delivery signs two
    tokens per email, so this is per-message CPU at fan-out sizes."""

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        signer = serializer.make_signer()
        if not isinstance(signer, TimestampSigner):
            raise TypeError(f"a timed serializer signs with a TimestampSigner, not {signer!r}")
        algorithm = signer.algorithm
        # The library's defaults (HMAC-SHA1 over a derived key); anything else is
        # signed by the library itself.
        self.fast = isinstance(algorithm, HMACAlgorithm) and (
            algorithm.digest_method(b"").name == "sha1"
        )
        self._key = signer.derive_key()
        self._sep = signer.sep
        self._signer = signer  # its get_timestamp is the clock (looked up per token)
        self._second = -1
        self._stamp = b""

    def sign(self, payload: bytes) -> str:
        """``payload`` is the base64 of the JSON; the timestamp and signature follow."""
        now = self._signer.get_timestamp()
        if now != self._second:
            self._second, self._stamp = now, base64_encode(int_to_bytes(now))
        value = payload + self._sep + self._stamp
        signature = base64_encode(hmac.digest(self._key, value, "sha1"))
        return (value + self._sep + signature).decode("ascii")


class TokenSigner:
    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key
        # Built once per purpose: delivery signs two tokens per email.
        self._serializers: dict[Purpose, URLSafeTimedSerializer] = {}
        self._mints: dict[Purpose, _Mint] = {}

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            # A distinct salt per purpose: an unsubscribe token can never confirm, and so on.
            serializer = _Serializer(self._secret, salt=f"chesscom-helper.{purpose}")
            self._serializers[purpose] = serializer
        return serializer

    def _mint(self, purpose: Purpose) -> _Mint:
        mint = self._mints.get(purpose)
        if mint is None:
            mint = self._mints[purpose] = _Mint(self._serializer(purpose))
        return mint

    def sign(self, purpose: Purpose, subject: int | str, email: str) -> str:
        return self.sign_all((purpose,), subject, email)[purpose]

    def sign_all(
        self, purposes: Iterable[Purpose], subject: int | str, email: str
    ) -> dict[Purpose, str]:
        """One token per purpose for one subject and address: the same claims, each
        signed with its purpose's key (the address is digested once)."""
        claims = {"s": subject, "e": email_digest(email)}
        payload = base64_encode(_compact_json(claims))
        tokens: dict[Purpose, str] = {}
        for purpose in purposes:
            mint = self._mint(purpose)
            if mint.fast:
                tokens[purpose] = mint.sign(payload)
            else:
                tokens[purpose] = self._serializer(purpose).dumps(claims)
        return tokens

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
            data, issued_at = self._serializer(purpose).loads(
                token, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise InvalidToken("This link has expired") from exc
        except BadSignature as exc:
            raise InvalidToken() from exc
        if not isinstance(data, dict) or "s" not in data or "e" not in data:
            raise InvalidToken()
        subject = data["s"]
        if not isinstance(subject, int | str) or not isinstance(data["e"], str):
            raise InvalidToken()
        return TokenClaims(subject=subject, email_digest=data["e"], issued_at=issued_at)
