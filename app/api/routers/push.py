"""Web Push on the site (SPEC §4, §11): the VAPID public key, the service worker and the
"Notify this browser" script.

The scripts are files of this package served as they are (no build step, no external
asset). `/sw.js` sits at the root so that its scope is the whole site.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from app.config import Settings
from app.push.vapid import application_server_key

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["push"])
scripts = APIRouter(include_in_schema=False)


class PushKey(BaseModel):
    public_key: str = Field(
        description="The VAPID application server key (RFC 8292): the uncompressed P-256 "
        "point, base64url without padding. Give it to `PushManager.subscribe` as "
        "`applicationServerKey`.",
        examples=[
            "BJxLCLEHd7zFlcBQ2Y3urUMN-N5CxqtlzuKYlRV3N4-I0YGpYvoWhhYBYfJZs7nRk1cHlgeJ9MYqmNA26srQ4fs"
        ],
    )


def public_key(request: Request) -> str:
    """The application server key of this deployment (derived once per process)."""
    state = request.app.state
    key: str | None = getattr(state, "vapid_public_key", None)
    if key is None:
        settings: Settings = state.settings
        key = state.vapid_public_key = application_server_key(settings.resolved_vapid_key())
    return key


@router.get(
    "/push/key",
    response_model=PushKey,
    summary="The key browsers subscribe to push messages with",
    description="What `PushManager.subscribe({applicationServerKey})` needs; then send "
    "the subscription to `POST /subscriptions` as `push`.",
)
async def push_key(request: Request) -> PushKey:
    return PushKey(public_key=public_key(request))


@lru_cache(maxsize=2)
def _script(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _serve(name: str) -> Response:
    return Response(
        _script(name),
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cache-Control": "no-cache",  # a new worker reaches browsers on their next visit
            "X-Content-Type-Options": "nosniff",
            "Service-Worker-Allowed": "/",
        },
    )


@scripts.get("/sw.js")
async def service_worker() -> Response:
    return _serve("sw.js")


@scripts.get("/push.js")
async def push_script() -> Response:
    return _serve("push.js")
