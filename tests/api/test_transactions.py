"""A request's writes are committed before its answer leaves (SPEC §8: lose no data).

A client told 201/202 must find its data on its next request, wherever that lands,
and a commit that fails must never be reported as a success.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.usefixtures("clean_db")


def recording(app: FastAPI, events: list[str]) -> Any:
    """The app, noting when the answer starts to leave."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                events.append(f"answer {message['status']}")
            await send(message)

        await app(scope, receive, noting)

    return asgi


async def test_writes_are_committed_before_the_answer_is_sent(
    app: FastAPI, hikaru: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    commit = AsyncSession.commit

    async def noted_commit(self: AsyncSession) -> None:
        await commit(self)
        events.append("commit")

    monkeypatch.setattr(AsyncSession, "commit", noted_commit)
    transport = httpx.ASGITransport(app=recording(app, events), client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post(
            "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"}
        )
    assert r.status_code == 202
    assert events[-2:] == ["commit", "answer 202"]


async def test_a_failed_commit_is_never_reported_as_a_success(
    app: FastAPI, client: httpx.AsyncClient, hikaru: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))

    monkeypatch.setattr(AsyncSession, "commit", failing_commit)
    r = await client.post(
        "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"}
    )
    assert r.status_code == 503
    assert r.headers["Retry-After"]
    monkeypatch.undo()
    assert (await client.get("/api/v1/players/hikaru")).status_code == 404, "nothing was kept"
