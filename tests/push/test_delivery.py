"""Web Push through the one outbox (SPEC §11, issue 20 items 1 and 4): a detected session
reaches each browser's push service once, encrypted for that browser, signed with our
VAPID key, with TTL, Urgency and the player's Topic; a 410 ends the subscription; a 429
is waited out; pause and filters hold as for every channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.config import Settings
from app.models import EmailSubscription, NotificationLog, Player
from app.push.message import topic_for
from app.push.vapid import application_server_key
from tests.fakes.push_service import Browser, PushService, serve_push_service
from tests.fakes.server import bound_socket, serve_on_socket, socket_url
from tests.fakes.webhooks import Reply
from tests.worker.conftest import HOUR, NOW, WorkerFactory, World

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
def service() -> Iterator[PushService]:
    with serve_push_service() as s:
        yield s


@pytest.fixture
def push_settings(worker_settings: Settings) -> Settings:
    # The loopback push service is a private address: allowed for this test only.
    return worker_settings.model_copy(update={"webhook_allow_private": True})


def browser_of(service: PushService, settings: Settings) -> Browser:
    """A browser subscribing with our application server key (GET /push/key's)."""
    return service.subscribe(application_server_key(settings.resolved_vapid_key()))


async def add_push(
    world: World, browser: Browser, *, username: str = "hikaru", **controls: object
) -> int:
    sub = browser.subscription_json()
    async with world.factory() as s, s.begin():
        pid = await s.scalar(select(Player.player_id).where(Player.username == username))
        row = EmailSubscription(
            channel="push",
            push_endpoint=sub["endpoint"],
            push_p256dh=sub["keys"]["p256dh"],
            push_auth=sub["keys"]["auth"],
            player_id=pid,
            confirmed_at=datetime.now(UTC),
            **controls,
        )
        s.add(row)
        await s.flush()
        return row.id


async def baseline(world: World, make_worker: WorkerFactory, settings: Settings) -> None:
    await world.track("hikaru", name="Hikaru Nakamura")
    world.sim.add_game("hikaru", end_time=NOW - 5 * HOUR)
    await make_worker(settings).run_once()


async def new_session(
    world: World,
    make_worker: WorkerFactory,
    settings: Settings,
    *,
    end: int = NOW - 120,
    **game: object,
) -> None:
    world.sim.add_game("hikaru", end_time=end, time_control="180+2", opponent="magnus", **game)
    await world.make_due()
    await make_worker(settings).run_once()


async def logs(world: World, sub_id: int) -> list[NotificationLog]:
    async with world.factory() as s:
        return list(
            (
                await s.scalars(
                    select(NotificationLog).where(NotificationLog.subscription_id == sub_id)
                )
            ).all()
        )


async def test_a_session_reaches_each_browser_once_decrypted_and_signed(
    world: World, make_worker: WorkerFactory, push_settings: Settings, service: PushService
) -> None:
    await baseline(world, make_worker, push_settings)
    phone, laptop = browser_of(service, push_settings), browser_of(service, push_settings)
    await add_push(world, phone)
    await add_push(world, laptop)
    await new_session(world, make_worker, push_settings)
    await new_session(world, make_worker, push_settings, end=NOW - 60)  # same session
    for browser in (phone, laptop):
        (message,) = service.received(browser)
        alert = message.json()
        assert alert["title"] == "Hikaru Nakamura is playing on Chess.com"
        assert "vs magnus" in alert["body"]
        assert alert["url"].startswith("https://www.chess.com/game/live/")
        assert alert["tag"] == "player:hikaru"
        assert alert["unsubscribe_url"].startswith("http://testserver/api/v1/unsubscribe?token=")
        assert message.headers["ttl"] == "1800"
        assert message.headers["urgency"] == "high"
        assert message.headers["topic"] == topic_for("hikaru")
        assert message.headers["content-encoding"] == "aes128gcm"
        assert message.claims["sub"] == "mailto:ci@example.com"


async def test_a_gone_browser_ends_its_subscription(
    world: World, make_worker: WorkerFactory, push_settings: Settings, service: PushService
) -> None:
    await baseline(world, make_worker, push_settings)
    browser = browser_of(service, push_settings)
    sub_id = await add_push(world, browser)
    service.unsubscribe(browser)  # the push service now answers 410
    await new_session(world, make_worker, push_settings)
    async with world.factory() as s:
        sub = await s.get(EmailSubscription, sub_id)
        assert sub is not None and not sub.is_active
    (log,) = await logs(world, sub_id)
    assert (log.status, log.attempts) == ("failed", 1)
    assert "410" in (log.error_message or "")
    # The next session is not even queued for it.
    await new_session(world, make_worker, push_settings, end=NOW + 3 * HOUR)
    assert len(await logs(world, sub_id)) == 1


async def test_429_waits_for_retry_after_then_delivers_once(
    world: World, make_worker: WorkerFactory, push_settings: Settings, service: PushService
) -> None:
    await baseline(world, make_worker, push_settings)
    browser = browser_of(service, push_settings)
    sub_id = await add_push(world, browser)
    service.then(Reply.rate_limited(1))
    started = time.monotonic()
    await new_session(world, make_worker, push_settings)
    (message,) = service.received(browser)
    assert message.at - started >= 0.9  # not before the second it asked for
    assert service.refused == [(429, "scripted")]
    (log,) = await logs(world, sub_id)
    assert (log.status, log.attempts) == ("sent", 2)


async def test_413_fails_the_row_without_retrying(
    world: World, make_worker: WorkerFactory, push_settings: Settings, service: PushService
) -> None:
    await baseline(world, make_worker, push_settings)
    sub_id = await add_push(world, browser_of(service, push_settings))
    service.then(Reply(413))
    await new_session(world, make_worker, push_settings)
    (log,) = await logs(world, sub_id)
    assert (log.status, log.attempts) == ("failed", 1)
    async with world.factory() as s:
        sub = await s.get(EmailSubscription, sub_id)
        assert sub is not None and sub.is_active  # the browser is still there


async def test_paused_and_filtered_push_subscriptions_get_nothing(
    world: World, make_worker: WorkerFactory, push_settings: Settings, service: PushService
) -> None:
    await baseline(world, make_worker, push_settings)
    paused, bullet_only = browser_of(service, push_settings), browser_of(service, push_settings)
    await add_push(world, paused, paused=True)
    await add_push(world, bullet_only, time_classes=["bullet"])
    await new_session(world, make_worker, push_settings)  # a blitz game
    assert service.messages == []


async def test_a_push_service_refusing_connections_pauses_its_rows_without_spending_attempts(
    world: World, make_worker: WorkerFactory, push_settings: Settings
) -> None:
    """A push service down as a whole (connection refused: a deploy, a restart) costs no
    attempt, as a webhook receiver does (SPEC §7): its rows wait while one probes, and
    go out once it is back."""
    # Retries this short would spend all five attempts within a second, were they spent.
    settings = push_settings.model_copy(update={"delivery_retry_base_seconds": 0.004})
    service = PushService()
    sock = bound_socket()  # bound, not listening yet: connections are refused
    service.base_url = socket_url(sock)
    await baseline(world, make_worker, settings)
    browser = browser_of(service, settings)
    sub_id = await add_push(world, browser)
    world.sim.add_game("hikaru", end_time=NOW - 120, time_control="180+2", opponent="magnus")
    await world.make_due()
    delivering = asyncio.create_task(make_worker(settings).run_once())

    async def refused_and_uncounted() -> bool:
        rows = await logs(world, sub_id)
        return bool(rows) and all(
            row.status == "pending" and row.attempts == 0 and "refus" in (row.error_message or "")
            for row in rows
        )

    async def until_refused_and_uncounted(within: float) -> None:
        # A row a probe holds counts its attempt until the pause is recorded: look
        # until no row is mid-probe.
        deadline = asyncio.get_running_loop().time() + within
        while not await refused_and_uncounted():
            assert not delivering.done(), "delivery gave up while the push service was down"
            assert asyncio.get_running_loop().time() < deadline, await logs(world, sub_id)
            await asyncio.sleep(0.02)

    await until_refused_and_uncounted(20)
    await asyncio.sleep(2.0)  # down for a while: probes find it refusing, nothing is spent
    await until_refused_and_uncounted(5)

    with serve_on_socket(service, sock, lifespan="off"):  # back, on the same port
        await asyncio.wait_for(delivering, 60)
    (message,) = service.received(browser)
    assert message.json()["title"] == "Hikaru Nakamura is playing on Chess.com"
    (row,) = await logs(world, sub_id)
    assert (row.status, row.success, row.attempts) == ("sent", True, 1)
    async with world.factory() as s:
        sub = await s.get(EmailSubscription, sub_id)
        assert sub is not None and sub.is_active
