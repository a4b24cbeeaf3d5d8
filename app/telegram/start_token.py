"""The token of a Telegram deep link, `https://t.me/<bot>?start=<token>` (SPEC §11).

Telegram passes the `start` parameter back in the chat's first message, `/start
<token>`. It may be at most 64 characters of `A-Za-z0-9_-`, so the email links' tokens
(itsdangerous, ~100 characters) do not fit: this one is the subscription id and the
time it was issued (12 bytes) with an HMAC-SHA256 over both, cut to 16 bytes, all
base64url: 38 characters. Forged, altered or expired → :class:`BadStartToken`; a
token already used to bind a chat is the binding's concern (the row says so).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass

MAX_AGE_SECONDS = 7 * 24 * 3600
_LAYOUT = struct.Struct(">QI")  # subscription id, issued at (unix seconds)
_MAC_BYTES = 16


class BadStartToken(ValueError):
    """Not a start token of ours, or an expired one."""


@dataclass(frozen=True, slots=True)
class StartClaims:
    subscription_id: int
    issued_at: int


def _key(secret_key: str) -> bytes:
    # Its own key, derived for this use: a start token is never any other token.
    return hashlib.sha256(b"telegram-start\x00" + secret_key.encode()).digest()


def sign(secret_key: str, subscription_id: int, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    body = _LAYOUT.pack(subscription_id, issued)
    mac = hmac.new(_key(secret_key), body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


def verify(
    secret_key: str, token: str, *, max_age: int = MAX_AGE_SECONDS, now: float | None = None
) -> StartClaims:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        raise BadStartToken("not a start token") from None
    if len(raw) != _LAYOUT.size + _MAC_BYTES or len(token) > 64:
        raise BadStartToken("not a start token")
    body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    expected = hmac.new(_key(secret_key), body, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise BadStartToken("not a start token")
    subscription_id, issued = _LAYOUT.unpack(body)
    age = (time.time() if now is None else now) - issued
    if age > max_age or age < -300:
        raise BadStartToken("the link has expired")
    return StartClaims(subscription_id, issued)
