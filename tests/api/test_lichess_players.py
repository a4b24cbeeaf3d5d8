"""Lichess players through the API (SPEC §4, §10; issue 19 items 1 and 7)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator

API = "/api/v1"


@pytest.fixture(autouse=True)
def lichess_users(lichess: LichessSimulator) -> None:
    lichess.add_user("DrNykterstein", title="GM")
    for i in range(5):
        lichess.add_user(f"fan_{i}")


async def test_a_lichess_key_tracks_a_lichess_player(
    client: httpx.AsyncClient, lichess: LichessSimulator
) -> None:
    r = await client.post(f"{API}/players", json={"username": "lichess:DrNykterstein"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["platform"] == "lichess"
    assert body["key"] == "lichess:drnykterstein"
    assert body["username"] == "drnykterstein"
    assert body["player_id"] is None  # Chess.com's id; a Lichess player has none
    assert body["title"] == "GM"
    assert body["url"] == "https://lichess.org/@/DrNykterstein"
    assert (body["is_playing"], body["is_streaming"], body["current_game_url"]) == (
        False,
        False,
        None,
    )
    # The same player by username and platform: already tracked.
    again = await client.post(
        f"{API}/players", json={"username": "DrNykterstein", "platform": "lichess"}
    )
    assert again.status_code == 200 and again.json()["key"] == "lichess:drnykterstein"
    got = await client.get(f"{API}/players/lichess:DrNykterstein")
    assert got.status_code == 200 and got.json() == {**body, "last_checked_at": None}
    assert [r.path for r in lichess.requests] == ["/api/user/drnykterstein"]


async def test_refreshing_a_lichess_player_reads_its_profile_again(
    client: httpx.AsyncClient, lichess: LichessSimulator
) -> None:
    assert (
        await client.post(f"{API}/players", json={"username": "lichess:fan_0"})
    ).status_code == 201
    lichess.close_user("fan_0")
    r = await client.post(f"{API}/players/lichess:fan_0/refresh")
    assert r.status_code == 200, r.text
    assert (r.json()["key"], r.json()["status"]) == ("lichess:fan_0", "closed")
    assert [r.path for r in lichess.requests] == ["/api/user/fan_0"] * 2


async def test_the_same_name_on_two_platforms_is_two_players(
    client: httpx.AsyncClient, lichess: LichessSimulator, simulator: ChessComSimulator
) -> None:
    simulator.add_player("DrNykterstein")
    chesscom = await client.post(f"{API}/players", json={"username": "drnykterstein"})
    lichess_player = await client.post(f"{API}/players", json={"username": "lichess:drnykterstein"})
    assert (chesscom.status_code, lichess_player.status_code) == (201, 201)
    assert chesscom.json()["platform"] == "chesscom" and chesscom.json()["player_id"] > 0
    listed = (await client.get(f"{API}/players")).json()
    assert sorted(p["key"] for p in listed["items"]) == ["drnykterstein", "lichess:drnykterstein"]


async def test_an_unknown_lichess_user_is_404_and_nothing_is_stored(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(f"{API}/players", json={"username": "lichess:nobody_here"})
    assert r.status_code == 404
    assert "nobody_here" in r.json()["detail"]
    assert (await client.get(f"{API}/players")).json()["total"] == 0


@pytest.mark.parametrize("key", ["lichess:", "lichess:a", "foo:bar", "lichess:a b", "chesscom:x"])
async def test_malformed_keys_are_422_and_change_nothing(
    client: httpx.AsyncClient, lichess: LichessSimulator, key: str
) -> None:
    r = await client.post(f"{API}/players", json={"username": key})
    assert r.status_code == 422, r.text
    assert (await client.get(f"{API}/players/{key}")).status_code in (404, 422)
    assert lichess.requests == []
    assert (await client.get(f"{API}/players")).json()["total"] == 0


async def test_a_platform_contradicting_the_key_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post(
        f"{API}/players", json={"username": "lichess:drnykterstein", "platform": "chesscom"}
    )
    assert r.status_code == 422


async def test_a_closed_lichess_account_is_tracked_as_closed(
    client: httpx.AsyncClient, lichess: LichessSimulator
) -> None:
    lichess.close_user("fan_1", tos_violation=True)
    r = await client.post(f"{API}/players", json={"username": "lichess:fan_1"})
    assert r.status_code == 201 and r.json()["status"] == "closed"


async def test_profile_reads_go_one_at_a_time(
    client: httpx.AsyncClient, lichess: LichessSimulator
) -> None:
    lichess.latency_seconds = 0.05
    answers = await asyncio.gather(
        *(client.post(f"{API}/players", json={"username": f"lichess:fan_{i}"}) for i in range(5))
    )
    assert [a.status_code for a in answers] == [201] * 5
    assert lichess.peak_in_flight == 1 and lichess.overlaps == 0


async def test_lichess_down_is_503_and_a_429_pauses_every_request(
    client: httpx.AsyncClient, lichess: LichessSimulator
) -> None:
    lichess.fail(503)
    r = await client.post(f"{API}/players", json={"username": "lichess:fan_2"})
    assert r.status_code == 503 and "Lichess" in r.json()["detail"]
    lichess.fail(429)
    assert (
        await client.post(f"{API}/players", json={"username": "lichess:fan_2"})
    ).status_code == 503
    # Within the minute after a 429 nothing is sent to Lichess at all.
    sent = len(lichess.requests)
    assert (
        await client.post(f"{API}/players", json={"username": "lichess:fan_3"})
    ).status_code == 503
    assert len(lichess.requests) == sent and lichess.penalised == 0
    assert (await client.get(f"{API}/players")).json()["total"] == 0


async def test_subscribing_to_a_lichess_key_tracks_and_subscribes(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        f"{API}/subscriptions",
        json={"email": "fan@example.com", "username": "lichess:DrNykterstein"},
    )
    assert r.status_code == 202, r.text
    player = (await client.get(f"{API}/players/lichess:drnykterstein")).json()
    assert player["platform"] == "lichess"
