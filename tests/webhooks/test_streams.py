"""Streams and Lichess game starts reach webhooks (SPEC §9, §10; issue 19 item 2): the
simulators → the sources → the outbox → real receivers on loopback, one per format.
The json body is checked against its documented model and its Standard Webhooks
signature by the `standardwebhooks` package."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from app.config import Settings
from app.webhooks.events import LiveMatchEvent, StreamStartedEvent
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator
from tests.fakes.ntfy import serve_ntfy
from tests.fakes.webhooks import Receiver, discord_problem, serve_receiver, slack_problem
from tests.webhooks.test_delivery import add_webhook
from tests.worker.conftest import WorkerFactory, World
from tests.worker.test_lichess_source import sweep
from tests.worker.test_lichess_source import track as track_lichess
from tests.worker.test_streamers_source import read_now

pytestmark = pytest.mark.usefixtures("clean_db")

STREAM_URL = "https://youtube.example/hikaru"  # the simulator's URL of a YouTube stream


@pytest.fixture
def hook_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(
        update={
            "webhook_allow_private": True,  # the receivers are on loopback
            "lichess_requests_per_second": 100,
            "lichess_sweep_seconds": 1,
        }
    )


def only(receiver: Receiver) -> bytes:
    (request,) = receiver.requests
    return request.body


async def test_a_new_stream_reaches_a_webhook_of_each_format_once(
    world: World,
    make_worker: WorkerFactory,
    hook_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
) -> None:
    await world.track("Hikaru")
    simulator.set_streamer("Hikaru")
    with (
        serve_receiver("discord") as discord,
        serve_receiver("slack") as slack,
        serve_receiver() as signed,
        serve_receiver() as sessions_only,
        serve_ntfy() as ntfy,
    ):
        await add_webhook(world, discord.url(), "discord")
        await add_webhook(world, slack.url(), "slack")
        secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
        await add_webhook(world, signed.url(), "json", secret=secret)
        await add_webhook(world, sessions_only.url(), "json", events=["session"])
        await add_webhook(world, ntfy.url("hikaru_live"), "ntfy")
        worker = make_worker(hook_settings)
        await read_now(session_factory, worker)  # the baseline: not live
        simulator.start_stream("Hikaru", "youtube")
        await read_now(session_factory, worker)
        await worker.drain_outbox()
        await read_now(session_factory, worker)  # still live: the same stream
        await worker.drain_outbox()

        body = discord.bodies()
        assert len(body) == 1 and discord_problem(body[0]) is None
        assert f"is live on YouTube: <{STREAM_URL}>" in body[0]["content"]
        assert body[0]["embeds"][0]["url"] == STREAM_URL

        (body,) = slack.bodies()
        assert slack_problem(body) is None
        assert body["text"] == f"hikaru is live on YouTube: {STREAM_URL}"

        (request,) = signed.requests
        verified: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
        assert verified["type"] == "stream.started"
        event = StreamStartedEvent.model_validate_json(request.body)
        assert event.data.event_id.startswith("stream:chesscom:hikaru:")
        assert (event.data.stream.type, event.data.stream.url) == ("youtube", STREAM_URL)
        assert (event.data.player.key, event.data.player.platform) == ("hikaru", "chesscom")
        assert request.headers["webhook-id"].startswith("msg_")

        (published,) = ntfy.topic("hikaru_live")
        assert published.click == STREAM_URL
        assert published.title == "hikaru is live on YouTube"

        assert sessions_only.requests == []  # it chose sessions only


async def test_a_lichess_game_and_stream_reach_a_signed_json_webhook(
    world: World,
    make_worker: WorkerFactory,
    hook_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
) -> None:
    pid = await track_lichess(session_factory, lichess, "DrNykterstein")
    with serve_receiver() as receiver:
        secret = "whsec_" + "bGljaGVzcy1saWNoZXNzLWxpY2hlc3MtbGljaGVzcyE="
        sub = await add_webhook(world, receiver.url(), "json", username="drnykterstein")
        async with session_factory() as s, s.begin():
            row = await s.merge(sub)
            row.webhook_secret = secret
            assert row.player_id == pid
        worker = make_worker(hook_settings)
        await sweep(worker)  # the baseline
        game = lichess.start_game("DrNykterstein", "3+2")
        await sweep(worker)
        await worker.drain_outbox()
        lichess.start_stream("DrNykterstein")
        await sweep(worker)
        await worker.drain_outbox()

        first, second = receiver.requests
        for request in (first, second):
            Webhook(secret).verify(request.body, request.headers)
        session = LiveMatchEvent.model_validate_json(first.body)
        player = session.data.player
        assert (player.platform, player.key) == ("lichess", "lichess:drnykterstein")
        assert player.profile_url == "https://lichess.org/@/drnykterstein"
        (started,) = session.data.games
        assert started.in_progress and started.url == f"https://lichess.org/{game}"
        assert (started.time_class, started.time_control) == ("blitz", "3+2")

        stream = StreamStartedEvent.model_validate_json(second.body)
        assert stream.data.player.key == "lichess:drnykterstein"
        assert stream.data.stream.url == "https://lichess.org/streamer/drnykterstein"
