"""What the fuzzers are told about the schema's own formats (loaded by both runs).

`p256-public-key` (a push subscription's `p256dh`): a pattern can say "87 base64url
characters", not "a point on the P-256 curve", so the format names the rule and this
strategy makes such points, as browsers do.
"""

from __future__ import annotations

import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import strategies as st

from app.push.vapid import b64url
from app.subscriptions.schemas import P256_FORMAT


def p256_public_key(secret: int) -> str:
    """The uncompressed P-256 point of a private key, base64url (a browser's p256dh)."""
    public = ec.derive_private_key(secret, ec.SECP256R1()).public_key()
    return b64url(public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


schemathesis.openapi.format(
    P256_FORMAT, st.integers(min_value=1, max_value=2**64).map(p256_public_key)
)
