"""One Web Push message: the browser's keys, the encrypted body, the headers (SPEC §11).

- The subscriber's keys are checked when they are given (:func:`parse_keys`): `p256dh`
  must be a point on P-256 (65 bytes, uncompressed) and `auth` 16 bytes, or the
  subscription is refused before anything is stored.
- The body is encrypted per RFC 8291 (`aes128gcm`, a fresh sender key pair and salt per
  message) by http_ece, the library pywebpush itself uses.
- The headers: `TTL: 1800` (an alert older than half an hour is worthless), `Urgency:
  high` (deliver even to a phone saving battery), and a `Topic` per player, so a newer
  alert about the same player replaces one still waiting in the push service.

No I/O here: the request goes out through the webhook sender (pinned address, no
redirects, 5 s, 64 KiB), see :mod:`app.channels.push`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from app.push.vapid import b64url, b64url_decode

TTL_SECONDS = 1800
URGENCY = "high"
# Push services take at most 4096 bytes of encrypted body (RFC 8291 §4 recommends it):
# the aes128gcm header (86 bytes), the padding delimiter and the tag leave 3993.
MAX_PLAINTEXT_BYTES = 3993


class InvalidPushKeys(ValueError):
    """The subscription's keys are not a P-256 public key and a 16-byte secret."""


@dataclass(frozen=True, slots=True)
class PushKeys:
    p256dh: bytes  # the browser's public key, an uncompressed P-256 point (65 bytes)
    auth: bytes  # the shared authentication secret (16 bytes)
    public_key: ec.EllipticCurvePublicKey

    @property
    def p256dh_text(self) -> str:
        return b64url(self.p256dh)

    @property
    def auth_text(self) -> str:
        return b64url(self.auth)


def parse_keys(p256dh: str, auth: str) -> PushKeys:
    """The keys of a `PushSubscription.toJSON()`, checked; raises InvalidPushKeys."""
    try:
        point = b64url_decode(p256dh)
    except ValueError:
        raise InvalidPushKeys("keys.p256dh is not base64url") from None
    if len(point) != 65 or point[0] != 4:
        raise InvalidPushKeys("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidPushKeys("keys.p256dh is not a point on the P-256 curve") from None
    try:
        secret = b64url_decode(auth)
    except ValueError:
        raise InvalidPushKeys("keys.auth is not base64url") from None
    if len(secret) != 16:
        raise InvalidPushKeys("keys.auth must be 16 bytes")
    return PushKeys(point, secret, public_key)


def topic_for(player_key: str) -> str:
    """The `Topic` of a player's alerts: 32 characters of base64url (RFC 8030 §5.4),
    from a hash of the player key so it says nothing about who is followed."""
    return b64url(hashlib.sha256(player_key.encode()).digest()[:24])


def encrypt(plaintext: bytes, keys: PushKeys) -> bytes:
    """The `aes128gcm` body for one subscriber (a fresh ephemeral key and salt each)."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"a push payload of {len(plaintext)} bytes is too large")
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext,
        private_key=sender,
        dh=keys.public_key,
        auth_secret=keys.auth,
        version="aes128gcm",
    )
    return body


def headers(authorization: str, topic: str) -> dict[str, str]:
    """The request headers of one push message (besides Host and User-Agent)."""
    return {
        "authorization": authorization,
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
        "ttl": str(TTL_SECONDS),
        "urgency": URGENCY,
        "topic": topic,
    }


@dataclass(frozen=True, slots=True)
class Notification:
    """What the service worker shows (``/sw.js`` reads exactly these keys)."""

    title: str
    body: str
    url: str  # opened on a click: the game, the stream or the player's page
    tag: str  # one notification per player on screen: a newer one replaces it
    unsubscribe_url: str | None = None  # the "Unsubscribe" action (POSTs to it)
    manage_url: str | None = None

    def encode(self) -> bytes:
        data: dict[str, Any] = {
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "tag": self.tag,
        }
        if self.unsubscribe_url:
            data["unsubscribe_url"] = self.unsubscribe_url
        if self.manage_url:
            data["manage_url"] = self.manage_url
        raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        body = self.body
        while len(raw) > MAX_PLAINTEXT_BYTES and body:  # a long body is cut, links kept
            excess = len(raw) - MAX_PLAINTEXT_BYTES
            body = body[: max(0, len(body) - excess - 1)]
            data["body"] = body + "…"
            raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return raw


# Stands for the unsubscribe link while a template is encoded (a NUL never occurs in a
# URL, and JSON writes it as an escape no text of ours makes).
_LINK_SLOT = "\x00unsubscribe\x00"
_LINK_SLOT_JSON = json.dumps(_LINK_SLOT).encode()


@dataclass(frozen=True, slots=True)
class NotificationTemplate:
    """One event's notification for every browser: they differ only in the unsubscribe
    link, so the JSON around it is encoded once per event and each browser's plaintext
    is three byte strings joined (:meth:`encode` gives exactly what
    :meth:`Notification.encode` gives for the notification with that link)."""

    notification: Notification  # without its unsubscribe link
    head: bytes  # the JSON before the link's value ...
    tail: bytes  # ... and after it; both empty: no template (each one encoded whole)

    @classmethod
    def of(cls, notification: Notification) -> NotificationTemplate:
        raw = replace(notification, unsubscribe_url=_LINK_SLOT).encode()
        if raw.count(_LINK_SLOT_JSON) != 1 or len(raw) >= MAX_PLAINTEXT_BYTES:
            return cls(notification, b"", b"")  # cut to size: each row encodes its own
        head, _, tail = raw.partition(_LINK_SLOT_JSON)
        return cls(notification, head, tail)

    def encode(self, unsubscribe_url: str) -> bytes:
        """The plaintext for one browser whose unsubscribe link is ``unsubscribe_url``."""
        if self.head and unsubscribe_url:  # (no link: the key is left out, see encode)
            link = json.dumps(unsubscribe_url, ensure_ascii=False).encode()
            raw = self.head + link + self.tail
            if len(raw) <= MAX_PLAINTEXT_BYTES:
                return raw
        # Too long for one push message: Notification.encode cuts the body to fit.
        return replace(self.notification, unsubscribe_url=unsubscribe_url).encode()
