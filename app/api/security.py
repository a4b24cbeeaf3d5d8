"""Admin authentication: a bearer token equal to ADMIN_TOKEN or one made with the CLI."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.admin_tokens import authenticate
from app.api.deps import SessionDep
from app.config import Settings
from app.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="An admin token (ADMIN_TOKEN or CLI-made)")


async def require_admin(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    settings: Settings = request.app.state.settings
    name = await authenticate(session, settings, credentials.credentials)
    if name is None:
        raise Unauthorized()
    request.state.admin = name
    return name


AdminDep = Annotated[str, Depends(require_admin)]
