"""The application server's VAPID identity (RFC 8292) for Web Push (SPEC §3, §11).

One P-256 key pair signs every push request: the browser was given its public half
(`GET /api/v1/push/key`, the `applicationServerKey` of `PushManager.subscribe`) and the
push service refuses a request whose `Authorization: vapid t=…, k=…` is not signed by
it. `VAPID_PRIVATE_KEY` is the key (PEM, or the raw 32-byte scalar base64url-encoded);
outside production one is generated once under the data directory, so the API and the
worker (and a restart) share it: a new key would orphan every browser's subscription.

The JWT itself is made by py-vapid; :class:`VapidSigner` only keeps one per push
service origin for a while, since signing (ECDSA) per message would cost as much as the
encryption does.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

KEY_FILE = "vapid_private_key.pem"
# RFC 8292 §2: `exp` at most 24 h ahead. A token is reused for 12 h, then signed anew,
# so a reused one always has at least 12 h left.
TOKEN_LIFETIME_SECONDS = 24 * 3600
TOKEN_REUSE_SECONDS = 12 * 3600


class InvalidVapidKey(ValueError):
    """VAPID_PRIVATE_KEY is neither a P-256 PEM key nor 32 base64url-encoded bytes."""


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding of every key in the Push API."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raises ValueError on anything else."""
    cleaned = text.strip()
    if not cleaned or any(c not in _B64URL for c in cleaned.rstrip("=")):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(cleaned.rstrip("=") + "=" * (-len(cleaned.rstrip("=")) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def parse_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """A VAPID private key from its PEM text or its raw scalar (base64url, 32 bytes)."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) != 32:
                raise ValueError("not 32 bytes")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError) as exc:
        raise InvalidVapidKey(
            "must be a P-256 private key: PEM, or the raw 32 bytes base64url-encoded"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidVapidKey("must be a P-256 (prime256v1) private key")
    return key


def private_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def stored_private_key(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The development key under ``data_dir``, generated on first use (API and worker
    racing at first start both end up with the one written first)."""
    path = data_dir / KEY_FILE
    try:
        return parse_private_key(path.read_text())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        with path.open("x") as fh:
            fh.write(private_pem(key))
        path.chmod(0o600)
    except FileExistsError:
        return parse_private_key(path.read_text())
    return key


def application_server_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as browsers take it: the uncompressed point, base64url."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


def origin_of(endpoint: str) -> str:
    """The JWT audience of a push endpoint: its scheme, host and port (RFC 8292 §2)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"


class VapidSigner:
    """`Authorization` headers for push requests, one JWT per audience reused 12 h."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        self._vapid = Vapid02()
        self._vapid.private_key = key
        self.subject = subject
        self.public_key = application_server_key(key)
        self._tokens: dict[str, tuple[float, str]] = {}

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        audience = origin_of(endpoint)
        now = time.time() if now is None else now
        cached = self._tokens.get(audience)
        if cached is not None and now - cached[0] < TOKEN_REUSE_SECONDS:
            return cached[1]
        claims = {"aud": audience, "sub": self.subject, "exp": int(now) + TOKEN_LIFETIME_SECONDS}
        header: str = self._vapid.sign(claims)["Authorization"]
        if len(self._tokens) >= 1024:  # push services are few; never grow without bound
            self._tokens.clear()
        self._tokens[audience] = (now, header)
        return header
