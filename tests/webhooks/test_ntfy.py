"""The ntfy format (SPEC §11) against a loopback ntfy server: the plain-text body ends
with the manage and unsubscribe links; Title, Click, Tags and Priority: high are ntfy
headers, read back as ntfy reads them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from app.config import Settings
from app.notifications.payloads import GameRecord
from app.webhooks import ntfy
from app.webhooks.client import WebhookSender
from app.webhooks.payloads import LiveMatchMessage, StreamMessage, VerificationMessage
from tests.fakes.ntfy import NtfyServer, serve_ntfy
from tests.webhooks.test_delivery import (
    CONFIRM_TOKEN,
    UNSUBSCRIBE_LINK,
    new_session,
)
from tests.worker.conftest import HOUR, NOW, WorkerFactory, World

AT = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
GAME = GameRecord(
    event_id="g1", url="https://www.chess.com/game/live/1", end_time=1, start_time=0,
    time_class="blitz", time_control="180", white="Hikaru", black="MagnusCarlsen",
    white_rating=3300, black_rating=3350, rated=True,
)  # fmt: skip
LIVE = LiveMatchMessage(
    username="hikaru", player_name="Hikaru Nakamura — 中村", games=[GAME], event_id="g1",
    occurred_at=AT, unsubscribe_url="https://helper.example/api/v1/unsubscribe?token=u",
    manage_url="https://helper.example/manage/webhook?token=m",
)  # fmt: skip
VERIFY = VerificationMessage(
    username="hikaru", confirm_url="https://helper.example/api/v1/subscriptions/confirm?token=c",
    unsubscribe_url="https://helper.example/api/v1/unsubscribe?token=u", occurred_at=AT,
    manage_url="https://helper.example/manage/webhook?token=m",
)  # fmt: skip


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}  # the API side: the loopback ntfy server


@pytest.fixture
def hook_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"webhook_allow_private": True})


@pytest.fixture
def server() -> Iterator[NtfyServer]:
    with serve_ntfy() as s:
        yield s


async def post(server: NtfyServer, message: object) -> int:
    body, headers = ntfy.render(message)  # type: ignore[arg-type]
    sender = WebhookSender(allow_private=True, user_agent="ntfy-test/1")
    try:
        response = await sender.post(server.url("chess_alerts"), body, headers)
    finally:
        await sender.aclose()
    return response.status_code


async def test_an_alert_is_a_high_priority_ntfy_message(server: NtfyServer) -> None:
    assert await post(server, LIVE) == 200
    (got,) = server.topic("chess_alerts")
    assert got.title == "Hikaru Nakamura — 中村 (hikaru) is playing"
    assert got.click == "https://www.chess.com/game/live/1"
    assert got.priority == 4 and got.headers["priority"] == "high"
    assert got.tags == ["chess_pawn", "red_circle"]
    assert "180 blitz vs MagnusCarlsen (3350): https://www.chess.com/game/live/1" in got.message
    assert got.message.endswith(
        "Manage these alerts: https://helper.example/manage/webhook?token=m\n"
        "Unsubscribe: https://helper.example/api/v1/unsubscribe?token=u"
    )
    assert got.headers["content-type"] == "text/plain; charset=utf-8"


async def test_the_verification_message_opens_the_confirm_page(server: NtfyServer) -> None:
    assert await post(server, VERIFY) == 200
    (got,) = server.published
    assert got.title == "Confirm alerts about hikaru"
    assert got.click == VERIFY.confirm_url
    assert VERIFY.confirm_url in got.message


async def test_a_stream_alert_opens_the_live_stream(server: NtfyServer) -> None:
    message = StreamMessage(
        username="hikaru", player_name="Hikaru Nakamura", platform="chesscom",
        stream_type="twitch", stream_url="https://twitch.tv/gmhikaru",
        event_id="stream:chesscom:hikaru:2026-12-07T05:00:00Z", occurred_at=AT,
        unsubscribe_url=LIVE.unsubscribe_url, manage_url=LIVE.manage_url,
    )  # fmt: skip
    assert await post(server, message) == 200
    (got,) = server.published
    assert got.title == "Hikaru Nakamura (hikaru) is live on Twitch"
    assert got.click == "https://twitch.tv/gmhikaru"
    assert got.priority == 4 and got.tags == ["chess_pawn", "movie_camera"]
    assert "Watch: https://twitch.tv/gmhikaru" in got.message
    assert got.message.endswith("Unsubscribe: https://helper.example/api/v1/unsubscribe?token=u")


async def test_a_lichess_game_opens_its_watch_link(server: NtfyServer) -> None:
    game = GameRecord(
        event_id="q7ZvsdUF", url="https://lichess.org/q7ZvsdUF", end_time=1, start_time=1,
        time_class="blitz", time_control="3+2", in_progress=True,
    )  # fmt: skip
    message = dataclasses.replace(
        LIVE, username="drnykterstein", player_name=None, games=[game], platform="lichess"
    )
    assert await post(server, message) == 200
    (got,) = server.published
    assert got.click == "https://lichess.org/q7ZvsdUF"
    assert "started playing live chess on Lichess" in got.message
    assert "3+2 blitz, playing now: https://lichess.org/q7ZvsdUF" in got.message


def test_no_control_character_reaches_a_header() -> None:
    sneaky = dataclasses.replace(LIVE, player_name="x\r\nPriority: min")
    _, headers = ntfy.render(sneaky)
    assert all("\r" not in v and "\n" not in v for v in headers.values())
    assert headers["priority"] == "high"


# -- through the API and the outbox -----------------------------------------------------


async def test_an_ntfy_topic_gets_the_verification_then_one_alert_per_session(
    client: httpx.AsyncClient, world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    world.sim.add_player("hikaru", name="Hikaru Nakamura")
    world.sim.add_game("hikaru", end_time=NOW - 5 * HOUR)
    with serve_ntfy() as server:
        answer = await client.post(
            "/api/v1/subscriptions",
            json={
                "username": "hikaru",
                "webhook": {"url": server.url("chess_alerts"), "format": "ntfy"},
            },
        )
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"status": "pending_confirmation"}
        await make_worker(hook_settings).run_once()  # the baseline poll; the verification
        (verification,) = server.topic("chess_alerts")
        assert verification.title == "Confirm alerts about hikaru"
        match = CONFIRM_TOKEN.search(verification.message)
        assert match is not None and verification.click is not None
        assert verification.click.endswith(match.group(0))
        assert UNSUBSCRIBE_LINK.search(verification.message)
        confirmed = await client.post(
            f"/api/v1/subscriptions/confirm?token={match.group(1)}",
            headers={"accept": "application/json"},
        )
        assert confirmed.status_code == 200, confirmed.text

        await new_session(world, make_worker, hook_settings)
        await new_session(world, make_worker, hook_settings, end=NOW - 60)  # same session
        assert len(server.published) == 2
        alert = server.published[1]
        assert alert.title == "Hikaru Nakamura (hikaru) is playing"
        assert alert.priority == 4 and alert.tags == ["chess_pawn", "red_circle"]
        assert alert.click is not None and alert.click.startswith(
            "https://www.chess.com/game/live/"
        )
        assert "vs magnus" in alert.message
        assert UNSUBSCRIBE_LINK.search(alert.message)
        assert alert.headers["webhook-id"].startswith("msg_")
