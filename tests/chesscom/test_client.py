"""ChessComClient against the simulator (in-process) and a few hand-made answers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from app.chesscom.client import ChessComClient, Fetched, NotModified
from app.chesscom.errors import (
    ChessComError,
    ChessComUnavailable,
    Forbidden,
    PlayerNotFound,
    RateLimited,
)
from app.config import Settings
from app.retry_after import parse_retry_after
from tests.chesscom.conftest import USER_AGENT, make_client
from tests.fakes.chesscom import ChessComSimulator, has_contact_info

JAN_10 = int(datetime(2024, 1, 10, 18, 0, tzinfo=UTC).timestamp())


def mock_client(handler: httpx.MockTransport) -> ChessComClient:
    return ChessComClient("https://api.chess.com/pub", user_agent=USER_AGENT, transport=handler)


async def test_profile_is_parsed_and_requested_lower_case(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    added = simulator.add_player("Hikaru", title="GM", is_streamer=True)
    result = await client.get_profile("Hikaru")
    assert isinstance(result, Fetched)
    assert result.data.player_id == added["player_id"]
    assert result.data.username == "hikaru" and result.data.title == "GM"
    assert result.data.country_code == "US"
    assert result.etag and result.etag.startswith('"')
    assert result.last_modified and result.last_modified.endswith("GMT")
    [request] = simulator.requests
    assert request.path == "/pub/player/hikaru"
    assert request.user_agent == USER_AGENT
    assert request.headers["accept"] == "application/json"
    assert request.if_none_match is None


async def test_archive_is_parsed_in_end_time_order(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("Hikaru")
    late = simulator.add_game("hikaru", end_time=JAN_10 + 3600, opponent="anishgiri")
    early = simulator.add_game("hikaru", end_time=JAN_10, time_class="bullet", color="black")
    simulator.add_game("hikaru", end_time=JAN_10 + 40 * 86400)  # February

    result = await client.get_archive("Hikaru", 2024, 1)
    assert isinstance(result, Fetched)
    games = result.data.games
    assert [g.uuid for g in games] == [early["uuid"], late["uuid"]]
    assert games[0].time_class == "bullet" and games[0].time_control == "60"
    assert games[0].black.username == "Hikaru"
    assert games[1].opponent_of("hikaru").username == "anishgiri"  # type: ignore[union-attr]
    assert games[1].started_at_unix == JAN_10 + 3600 - 430
    assert simulator.requests[-1].path == "/pub/player/hikaru/games/2024/01"


async def test_empty_month_of_an_existing_player(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("newbie")
    result = await client.get_archive("newbie", 2030, 12)
    assert isinstance(result, Fetched) and result.data.games == []


async def test_archive_index(simulator: ChessComSimulator, client: ChessComClient) -> None:
    simulator.add_player("hikaru")
    simulator.add_game("hikaru", end_time=JAN_10)
    result = await client.get_archive_index("hikaru")
    assert isinstance(result, Fetched)
    assert result.data.archives == ["http://chesscom.test/pub/player/hikaru/games/2024/01"]


async def test_etag_round_trip(simulator: ChessComSimulator, client: ChessComClient) -> None:
    simulator.add_player("hikaru")
    first = await client.get_archive("hikaru", 2024, 1)
    assert isinstance(first, Fetched) and first.etag

    second = await client.get_archive("hikaru", 2024, 1, etag=first.etag)
    assert second == NotModified(etag=first.etag)
    assert simulator.requests[-1].if_none_match == first.etag
    assert simulator.requests[-1].status == 304

    simulator.add_game("hikaru", end_time=JAN_10)
    third = await client.get_archive("hikaru", 2024, 1, etag=first.etag)
    assert isinstance(third, Fetched) and third.etag != first.etag
    assert len(third.data.games) == 1


async def test_profile_etag_changes_with_content(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("hikaru")
    first = await client.get_profile("hikaru")
    assert isinstance(first, Fetched)
    assert isinstance(await client.get_profile("hikaru", etag=first.etag), NotModified)
    simulator.update_player("hikaru", followers=10)
    again = await client.get_profile("hikaru", etag=first.etag)
    assert isinstance(again, Fetched) and again.data.followers == 10


async def test_304_is_not_parsed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["If-None-Match"] == '"abc"'
        return httpx.Response(304, content=b"<definitely not json>", headers={"ETag": '"abc"'})

    async with mock_client(httpx.MockTransport(handler)) as chesscom:
        assert await chesscom.get_profile("hikaru", etag='"abc"') == NotModified('"abc"')


async def fetch(client: ChessComClient, endpoint: str, username: str) -> object:
    """The player's profile, or its January 2024 archive."""
    if endpoint == "profile":
        return await client.get_profile(username)
    return await client.get_archive(username, 2024, 1)


@pytest.mark.parametrize("endpoint", ["profile", "archive"])
async def test_unknown_player_is_404(client: ChessComClient, endpoint: str) -> None:
    with pytest.raises(PlayerNotFound) as caught:
        await fetch(client, endpoint, "nobody_here")
    assert caught.value.gone is False and caught.value.status_code == 404
    assert not caught.value.retryable


async def test_removed_player_is_404(simulator: ChessComSimulator, client: ChessComClient) -> None:
    simulator.add_player("leaver")
    simulator.remove_player("leaver")
    with pytest.raises(PlayerNotFound):
        await client.get_profile("leaver")


@pytest.mark.parametrize("endpoint", ["profile", "archive"])
async def test_gone_player_is_410(
    simulator: ChessComSimulator, client: ChessComClient, endpoint: str
) -> None:
    simulator.add_player("cheater")
    simulator.close_player("cheater", gone=True)
    with pytest.raises(PlayerNotFound) as caught:
        await fetch(client, endpoint, "cheater")
    assert caught.value.gone is True and caught.value.status_code == 410


async def test_closed_player_still_has_a_profile(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("quitter")
    simulator.close_player("quitter", status="closed:fair_play_violations")
    result = await client.get_profile("quitter")
    assert isinstance(result, Fetched) and result.data.is_closed


async def test_rename_is_followed_through_301(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    added = simulator.add_player("OldName")
    simulator.rename_player("oldname", "NewName")
    result = await client.get_profile("oldname")
    assert isinstance(result, Fetched)
    assert result.data.username == "newname" and result.data.player_id == added["player_id"]
    assert [r.status for r in simulator.requests] == [301, 200]

    simulator.add_game("newname", end_time=JAN_10)
    archive = await client.get_archive("OldName", 2024, 1)
    assert isinstance(archive, Fetched) and len(archive.data.games) == 1
    assert simulator.requests[-1].path == "/pub/player/newname/games/2024/01"


async def test_user_agent_without_contact_is_forbidden(simulator: ChessComSimulator) -> None:
    simulator.add_player("hikaru")
    async with make_client(simulator, user_agent="python-httpx/0.28") as anonymous:
        with pytest.raises(Forbidden) as caught:
            await anonymous.get_profile("hikaru")
    assert not caught.value.retryable and caught.value.status_code == 403


async def test_parallel_load_above_the_cap_gets_429() -> None:
    simulator = ChessComSimulator(max_concurrent=2, latency_seconds=0.05, retry_after_seconds=3)
    simulator.add_player("hikaru")
    async with make_client(simulator) as chesscom:
        results = await asyncio.gather(
            *(chesscom.get_profile("hikaru") for _ in range(8)), return_exceptions=True
        )
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert limited and all(r.retry_after == 3.0 and r.retryable for r in limited)
    assert sum(isinstance(r, Fetched) for r in results) >= 2
    assert simulator.peak_concurrency > 2

    # Serial requests are never limited.
    simulator.reset_requests()
    async with make_client(simulator) as chesscom:
        for _ in range(4):
            assert isinstance(await chesscom.get_profile("hikaru"), Fetched)
    assert simulator.peak_concurrency == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(
    simulator: ChessComSimulator, client: ChessComClient, status: int
) -> None:
    simulator.add_player("hikaru")
    simulator.fail("hikaru", status=status)
    with pytest.raises(ChessComUnavailable) as caught:
        await client.get_profile("hikaru")
    assert caught.value.status_code == status and caught.value.retryable
    assert isinstance(await client.get_profile("hikaru"), Fetched)  # times=1


async def test_fault_can_target_one_endpoint(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("hikaru")
    simulator.fail("hikaru", status=503, times=None, endpoint="archive")
    assert isinstance(await client.get_profile("hikaru"), Fetched)
    with pytest.raises(ChessComUnavailable):
        await client.get_archive("hikaru", 2024, 1)
    simulator.clear_faults("hikaru")
    assert isinstance(await client.get_archive("hikaru", 2024, 1), Fetched)


async def test_timeout_is_unavailable(simulator: ChessComSimulator) -> None:
    simulator.add_player("slowpoke")
    simulator.timeout("slowpoke", 2.0)
    async with make_client(simulator, timeout=0.2) as chesscom:
        started = time.monotonic()
        with pytest.raises(ChessComUnavailable, match="timed out"):
            await chesscom.get_profile("slowpoke")
        assert time.monotonic() - started < 1.5
    assert simulator.in_flight == 0


async def test_latency_within_the_timeout_is_fine() -> None:
    simulator = ChessComSimulator(latency_seconds=0.05)
    simulator.add_player("hikaru")
    async with make_client(simulator, timeout=1.0) as chesscom:
        assert isinstance(await chesscom.get_profile("hikaru"), Fetched)


async def test_malformed_json_is_unavailable(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("hikaru")
    simulator.malformed("hikaru", times=1)
    with pytest.raises(ChessComUnavailable, match="unexpected payload"):
        await client.get_archive("hikaru", 2024, 1)
    assert isinstance(await client.get_archive("hikaru", 2024, 1), Fetched)


async def test_payload_failing_validation_is_unavailable(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("hikaru", player_id="not-a-number")
    with pytest.raises(ChessComUnavailable):
        await client.get_profile("hikaru")


async def test_connection_refused_is_unavailable() -> None:
    async with ChessComClient("http://127.0.0.1:9/pub", user_agent=USER_AGENT) as chesscom:
        with pytest.raises(ChessComUnavailable):
            await chesscom.get_profile("hikaru")


async def test_other_statuses_are_permanent_errors() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(400, json={"code": 0}))
    async with mock_client(transport) as chesscom:
        with pytest.raises(ChessComError) as caught:
            await chesscom.get_profile("hikaru")
    assert type(caught.value) is ChessComError and caught.value.status_code == 400


async def test_archive_404_about_a_date_is_an_empty_month() -> None:
    body = {"code": 0, "message": "Date cannot be set in the future."}
    transport = httpx.MockTransport(lambda request: httpx.Response(404, json=body))
    async with mock_client(transport) as chesscom:
        result = await chesscom.get_archive("hikaru", 2099, 1)
        assert isinstance(result, Fetched) and result.data.games == []
        with pytest.raises(PlayerNotFound):
            await chesscom.get_profile("hikaru")


async def test_username_is_escaped_in_the_path() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(404, json={"code": 0, "message": "User not found."})

    async with mock_client(httpx.MockTransport(handler)) as chesscom:
        with pytest.raises(PlayerNotFound):
            await chesscom.get_profile(" We/ird?x ")
    assert seen == [b"/pub/player/we%2Fird%3Fx"]


async def test_bad_arguments_are_refused(client: ChessComClient) -> None:
    with pytest.raises(ValueError):
        await client.get_profile("   ")
    with pytest.raises(ValueError):
        await client.get_archive("hikaru", 2024, 13)


async def test_response_hook_sees_every_request(simulator: ChessComSimulator) -> None:
    seen: list[tuple[str, int | None]] = []
    simulator.add_player("hikaru")
    async with make_client(simulator, on_response=lambda k, s, t: seen.append((k, s))) as c:
        await c.get_profile("hikaru")
        with pytest.raises(PlayerNotFound):
            await c.get_archive("ghost", 2024, 1)
    assert seen == [("profile", 200), ("archive", 404)]


async def test_shared_http_client_is_not_closed() -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(500))
    ) as http:
        chesscom = ChessComClient(user_agent=USER_AGENT, http_client=http)
        with pytest.raises(ChessComUnavailable):
            await chesscom.get_profile("hikaru")
        await chesscom.aclose()
        assert not http.is_closed


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5.0), ("0.5", 0.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0


def test_the_default_user_agent_carries_contact_info() -> None:
    for env in ({"contact_email": "ops@example.com"}, {}):
        agent = Settings(database_url="postgresql+asyncpg://u@h/db", **env).user_agent
        assert agent.startswith("chesscom-helper/") and has_contact_info(agent)
