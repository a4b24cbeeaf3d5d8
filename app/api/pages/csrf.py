"""CSRF tokens for the site's forms: a signed double-submit cookie.

Each page with a form sets a cookie holding a signed random value and puts the same
value in a hidden field; a POST is accepted only when both are present, equal and
carry our signature. Another site can make a browser post a form, but it can neither
read our cookie nor set it (SameSite=Strict, HttpOnly), so it cannot fill the field.
(asgi-csrf was considered: it wraps every POST of the app, the JSON API included, and
lets cookie-less requests through, which is every first visit here.)
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "cch_csrf"
FIELD = "csrf_token"
MAX_AGE_SECONDS = 24 * 3600


class CsrfFailed(Exception):
    """The form's token is missing, stale or not the cookie's."""


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="chesscom-helper.csrf")


def _valid(secret: str, value: str | None) -> bool:
    if not value or len(value) > 200:
        return False
    try:
        _serializer(secret).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return False
    return True


def token_for(request: Request, secret: str) -> str:
    """The token for a page's forms: the visitor's current one, or a new one."""
    current = request.cookies.get(COOKIE)
    if current is not None and _valid(secret, current):
        return current
    return _serializer(secret).dumps(secrets.token_urlsafe(16))


def set_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def check(request: Request, secret: str, submitted: object) -> None:
    """Raise CsrfFailed unless the submitted field matches a genuine cookie."""
    cookie = request.cookies.get(COOKIE)
    if not isinstance(submitted, str) or cookie is None or not _valid(secret, cookie):
        raise CsrfFailed()
    if not hmac.compare_digest(cookie.encode(), submitted.encode()):
        raise CsrfFailed()
