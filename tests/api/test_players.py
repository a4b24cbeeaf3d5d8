"""Players API (SPEC §4): track, list, get, refresh, untrack."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.fakes.chesscom import ChessComSimulator

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_track_new_player_returns_201_with_profile(
    client: httpx.AsyncClient, hikaru: dict[str, object]
) -> None:
    r = await client.post("/api/v1/players", json={"username": "Hikaru"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["player_id"] == 15448422
    assert body["username"] == "hikaru"
    assert body["name"] == "Hikaru Nakamura"
    assert body["title"] == "GM"
    assert body["country"] == "US"
    assert body["is_playing"] is False
    assert body["subscriber_count"] == 0
    assert body["tracked_since"].endswith("Z")
    # Written out, not taken from app.players.service.PUBLIC_COLUMNS: the test pins the
    # contract (SPEC §5), so a column dropped there must fail here.
    expected = {
        "player_id",
        "username",
        "name",
        "url",
        "avatar",
        "title",
        "followers",
        "country",
        "location",
        "status",
        "league",
        "last_online",
        "joined",
        "is_streamer",
        "verified",
        "is_playing",
        "streaming_platforms",
        "tracked_since",
        "last_checked_at",
        "subscriber_count",
        # Issue 19: players on two platforms, streams, Lichess games.
        "platform",
        "key",
        "is_streaming",
        "stream_url",
        "current_game_url",
    }
    assert set(body) == expected
    assert (body["platform"], body["key"], body["is_streaming"]) == ("chesscom", "hikaru", False)


async def test_tracking_twice_returns_200(client: httpx.AsyncClient, hikaru: object) -> None:
    assert (await client.post("/api/v1/players", json={"username": "hikaru"})).status_code == 201
    r = await client.post("/api/v1/players", json={"username": "HIKARU"})
    assert r.status_code == 200
    assert (await client.get("/api/v1/players")).json()["total"] == 1


async def test_unknown_player_is_404_and_stores_nothing(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/players", json={"username": "nosuchplayer"})
    assert r.status_code == 404
    assert "nosuchplayer" in r.json()["detail"]
    assert (await client.get("/api/v1/players")).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab"},
        {"username": "a" * 26},
        {"username": "bad name"},
        {"username": "x'; DROP TABLE players;--"},
        {"username": "<script>"},
        {"username": 123},
        {"username": None},
        {},
        {"username": "hikaru", "extra": 1},
        ["hikaru"],
    ],
)
async def test_malformed_username_is_422(client: httpx.AsyncClient, body: object) -> None:
    r = await client.post("/api/v1/players", json=body)
    assert r.status_code == 422
    assert "detail" in r.json()
    assert (await client.get("/api/v1/players")).json()["total"] == 0


@pytest.mark.parametrize(
    ("status", "times", "answer", "stored"),
    [
        (502, 10, 503, 0),  # Chess.com down: 503, and nothing is stored
        (500, 1, 201, 1),  # a transient failure is retried
    ],
)
async def test_chesscom_failures(
    client: httpx.AsyncClient,
    simulator: ChessComSimulator,
    hikaru: object,
    status: int,
    times: int,
    answer: int,
    stored: int,
) -> None:
    simulator.fail("hikaru", status=status, times=times)
    r = await client.post("/api/v1/players", json={"username": "hikaru"})
    assert r.status_code == answer
    assert (await client.get("/api/v1/players")).json()["total"] == stored


async def test_get_is_case_insensitive(client: httpx.AsyncClient, hikaru: object) -> None:
    await client.post("/api/v1/players", json={"username": "hikaru"})
    r = await client.get("/api/v1/players/HiKaRu")
    assert r.status_code == 200
    assert r.json()["username"] == "hikaru"
    assert (await client.get("/api/v1/players/magnus")).status_code == 404


async def test_list_paginates(client: httpx.AsyncClient, simulator: ChessComSimulator) -> None:
    for name in ["alpha", "bravo", "charlie", "delta", "echo"]:
        simulator.add_player(name)
        assert (await client.post("/api/v1/players", json={"username": name})).status_code == 201
    r = await client.get("/api/v1/players", params={"limit": 2, "offset": 1})
    body = r.json()
    assert body["total"] == 5
    assert body["limit"] == 2 and body["offset"] == 1
    assert [p["username"] for p in body["items"]] == ["bravo", "charlie"]
    for params in ({"limit": 0}, {"limit": 1000}, {"offset": -1}, {"limit": "x"}):
        assert (await client.get("/api/v1/players", params=params)).status_code == 422


async def test_refresh_fetches_a_fresh_profile(
    client: httpx.AsyncClient, simulator: ChessComSimulator, hikaru: object
) -> None:
    await client.post("/api/v1/players", json={"username": "hikaru"})
    simulator.update_player("hikaru", followers=42, name="Renamed")
    r = await client.post("/api/v1/players/hikaru/refresh")
    assert r.status_code == 200
    assert r.json()["followers"] == 42 and r.json()["name"] == "Renamed"
    assert (await client.post("/api/v1/players/nobody/refresh")).status_code == 404


async def test_delete_needs_admin(
    client: httpx.AsyncClient, admin: dict[str, str], hikaru: object
) -> None:
    await client.post("/api/v1/players", json={"username": "hikaru"})
    assert (await client.delete("/api/v1/players/hikaru")).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert (await client.delete("/api/v1/players/hikaru", headers=bad)).status_code == 401
    assert (await client.get("/api/v1/players/hikaru")).status_code == 200
    assert (await client.delete("/api/v1/players/hikaru", headers=admin)).status_code == 204
    assert (await client.get("/api/v1/players/hikaru")).status_code == 404
    assert (await client.delete("/api/v1/players/hikaru", headers=admin)).status_code == 404


async def test_refresh_all_is_admin_and_202(
    client: httpx.AsyncClient, admin: dict[str, str], app: object, hikaru: object
) -> None:
    await client.post("/api/v1/players", json={"username": "hikaru"})
    assert (await client.post("/api/v1/players/refresh")).status_code == 401
    r = await client.post("/api/v1/players/refresh", headers=admin)
    assert r.status_code == 202
    assert r.json() == {"status": "accepted", "players": 1}


async def test_refresh_all_runs_one_pass_at_a_time(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, simulator: ChessComSimulator
) -> None:
    for name in ("hikaru", "magnus", "anishgiri"):
        simulator.add_player(name)
        await client.post("/api/v1/players", json={"username": name})
    simulator.reset_requests()
    simulator.latency_seconds = 0.05
    for _ in range(3):  # asked three times while the first pass still runs
        assert (await client.post("/api/v1/players/refresh", headers=admin)).status_code == 202
    await asyncio.wait_for(app.state.refresh_all_task, 5)
    assert len(simulator.requests) == 3, "one profile request per player, not three"
    # Once it is over, asking again starts a new pass.
    assert (await client.post("/api/v1/players/refresh", headers=admin)).status_code == 202
    await asyncio.wait_for(app.state.refresh_all_task, 5)
    assert len(simulator.requests) == 6
