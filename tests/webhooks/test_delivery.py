"""Webhooks end to end (issue 13 items 1, 3, 5): subscribe through the API, confirm via
the verification message, then the worker detects sessions and posts to real receivers
on loopback (WEBHOOK_ALLOW_PRIVATE=true for them only) through the outbox."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.backoff import RETRY_STEPS
from app.config import Settings
from app.models import EmailSubscription, NotificationLog, Player
from app.webhooks.signing import new_secret
from tests.fakes.server import bound_socket, serve_on_socket, socket_url
from tests.fakes.webhooks import Received, Receiver, Reply, serve_receiver
from tests.worker.conftest import HOUR, NOW, WorkerFactory, World
from worker import runner
from worker.runner import Worker

pytestmark = pytest.mark.usefixtures("clean_db")

CONFIRM_TOKEN = re.compile(r"/api/v1/subscriptions/confirm\?token=([A-Za-z0-9_.%-]+)")
UNSUBSCRIBE_LINK = re.compile(r"http://testserver/api/v1/unsubscribe\?token=[A-Za-z0-9_.%-]+")
FLAVOUR = {"discord": "discord", "slack": "slack", "json": "generic"}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def hook_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"webhook_allow_private": True})


def masked(body: bytes) -> str:
    return re.sub(r"token=[A-Za-z0-9_.%-]+", "token=…", body.decode())


async def add_webhook(
    world: World,
    url: str,
    fmt: str = "json",
    *,
    username: str = "hikaru",
    secret: str | None = None,
    **controls: object,
) -> EmailSubscription:
    async with world.factory() as s, s.begin():
        pid = await s.scalar(select(Player.player_id).where(Player.username == username))
        sub = EmailSubscription(
            channel="webhook",
            webhook_url=url,
            webhook_format=fmt,
            webhook_secret=secret or (new_secret() if fmt == "json" else None),
            player_id=pid,
            is_active=True,
            confirmed_at=datetime.now(UTC),
            **controls,
        )
        s.add(sub)
    return sub


async def subscribe_through_api(
    client: httpx.AsyncClient, receiver: Receiver, path: str, fmt: str, worker: Worker
) -> tuple[str | None, Received]:
    """Subscribe the receiver's `path` to hikaru (not tracked yet) through the API; the
    worker's first pass (the baseline poll) posts the verification message. Returns the
    json format's secret (shown once) and that message."""
    answer = await client.post(
        "/api/v1/subscriptions",
        json={"username": "hikaru", "webhook": {"url": receiver.url(path), "format": fmt}},
    )
    assert answer.status_code == 202, answer.text
    secret = answer.json().get("secret")
    assert answer.json()["status"] == "pending_confirmation"
    assert (secret is not None and secret.startswith("whsec_")) == (fmt == "json")
    await worker.run_once()
    (verification,) = receiver.requests
    return secret, verification


async def baseline(world: World, make_worker: WorkerFactory, settings: Settings) -> None:
    await world.track("hikaru", name="Hikaru Nakamura")
    world.sim.add_game("hikaru", end_time=NOW - 5 * HOUR)
    await make_worker(settings).run_once()


async def new_session(
    world: World, make_worker: WorkerFactory, settings: Settings, *, end: int = NOW - 120
) -> None:
    world.sim.add_game("hikaru", end_time=end, time_control="180+2", opponent="magnus")
    await world.make_due()
    await make_worker(settings).run_once()


async def sub_state(world: World, sub_id: int) -> EmailSubscription:
    async with world.factory() as s:
        sub = await s.get(EmailSubscription, sub_id)
        assert sub is not None
        return sub


@pytest.mark.parametrize("fmt", ["discord", "slack", "json"])
async def test_each_format_is_confirmed_then_delivered_exactly_once_per_session(
    fmt: str,
    client: httpx.AsyncClient,
    world: World,
    make_worker: WorkerFactory,
    hook_settings: Settings,
) -> None:
    world.sim.add_player("hikaru", name="Hikaru Nakamura")
    world.sim.add_game("hikaru", end_time=NOW - 5 * HOUR)
    with serve_receiver(FLAVOUR[fmt]) as receiver:
        secret, verification = await subscribe_through_api(
            client, receiver, f"/hooks/{fmt}/T0KEN", fmt, make_worker(hook_settings)
        )
        assert verification.path == f"/hooks/{fmt}/T0KEN"
        assert UNSUBSCRIBE_LINK.search(verification.body.decode())
        if secret:
            event = Webhook(secret).verify(verification.body, verification.headers)
            assert event["type"] == "subscription.verification"
        match = CONFIRM_TOKEN.search(verification.body.decode())
        assert match is not None, verification.body

        # A session before the confirmation: nothing is posted.
        await new_session(world, make_worker, hook_settings, end=NOW - 3 * HOUR)
        assert len(receiver.requests) == 1

        confirmed = await client.post(
            f"/api/v1/subscriptions/confirm?token={match.group(1)}",
            headers={"accept": "application/json"},
        )
        assert confirmed.status_code == 200, confirmed.text

        await new_session(world, make_worker, hook_settings)
        assert len(receiver.requests) == 2
        live = receiver.requests[1]
        text = live.body.decode()
        assert "hikaru" in text and "magnus" in text
        assert UNSUBSCRIBE_LINK.search(text)
        assert live.headers["webhook-id"].startswith("msg_")
        assert live.headers["webhook-id"] != verification.headers["webhook-id"]
        if fmt == "discord":
            embed = live.json()["embeds"][0]
            assert embed["url"].startswith("https://www.chess.com/game/live/")
        elif fmt == "slack":
            assert live.json()["blocks"]
        else:
            event = Webhook(secret).verify(live.body, live.headers)
            assert event["type"] == "live_match.started"
            assert event["data"]["games"][0]["opponent"] == "magnus"

        # Seen again: nothing more.
        await world.make_due()
        await make_worker(hook_settings).run_once()
        assert len(receiver.requests) == 2
        logs = [log for log in await world.logs() if log.notification_type == "live_match"]
        assert [(log.status, log.attempts) for log in logs] == [("sent", 1)]


@pytest.mark.parametrize(
    ("reply", "min_gap"),
    [
        (Reply.rate_limited(1), 0.9),  # Retry-After header
        (Reply.discord_rate_limited(0.6), 0.55),  # Discord's retry_after in the body
    ],
)
async def test_429_is_retried_after_the_wait_asked_for_with_the_same_webhook_id(
    reply: Reply,
    min_gap: float,
    world: World,
    make_worker: WorkerFactory,
    hook_settings: Settings,
) -> None:
    with serve_receiver("discord") as receiver:
        await baseline(world, make_worker, hook_settings)
        await add_webhook(world, receiver.url("/api/webhooks/1/x"), "discord")
        receiver.then(reply)
        await new_session(world, make_worker, hook_settings)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    # The same message; only its signed links are signed afresh.
    assert masked(first.body) == masked(second.body)
    assert second.at - first.at >= min_gap
    (log,) = await world.logs()
    assert (log.status, log.attempts) == ("sent", 2)


async def test_5xx_is_retried_with_backoff_then_fails_after_5_attempts(
    world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    # The schedule of SPEC §7 (5 s, 2 min, 10 min, 30 min) scaled down 500 times.
    settings = hook_settings.model_copy(update={"delivery_retry_base_seconds": 0.01})
    secret = new_secret()
    with serve_receiver() as receiver:
        await baseline(world, make_worker, settings)
        await add_webhook(world, receiver.url("/in"), "json", secret=secret)
        receiver.then(*[Reply(500, b"oops")] * 6)
        await new_session(world, make_worker, settings)
    assert len(receiver.requests) == 5
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:  # every attempt is signed afresh, and verifies
        Webhook(secret).verify(request.body, request.headers)
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    # Each wait is at least its step of the schedule (jitter only lengthens it; a busy
    # machine too, so strict ordering of neighbours would be noise), and they grow.
    base = settings.delivery_retry_base_seconds
    for step, gap in zip(RETRY_STEPS, gaps, strict=True):
        assert gap >= 0.95 * base * step, gaps
    assert gaps[-1] > gaps[0], "backoff grows"
    (log,) = await world.logs()
    assert (log.status, log.success, log.attempts) == ("failed", False, 5)
    assert log.error_message == "HTTP 500: oops"


async def test_a_receiver_refusing_connections_pauses_its_rows_without_spending_attempts(
    world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    """A receiver down as a whole (connection refused: a deploy, a restart) costs no
    attempt: its rows wait while one probes, and go out once it is back (SPEC §7)."""
    # Retries this short would spend all five attempts within a second, were they spent.
    settings = hook_settings.model_copy(update={"delivery_retry_base_seconds": 0.004})
    receiver = Receiver("generic")
    sock = bound_socket()  # bound, not listening yet: connections are refused
    url = socket_url(sock) + "/in"
    await baseline(world, make_worker, settings)
    sub = await add_webhook(world, url, "json")
    world.sim.add_game("hikaru", end_time=NOW - 120, time_control="180+2", opponent="magnus")
    await world.make_due()
    delivering = asyncio.create_task(make_worker(settings).run_once())

    async def refused_and_uncounted() -> bool:
        logs = await world.logs()
        return bool(logs) and all(
            log.status == "pending" and log.attempts == 0 and "refus" in (log.error_message or "")
            for log in logs
        )

    async def until_refused_and_uncounted(within: float) -> None:
        # A row a probe holds counts its attempt until the pause is recorded: look
        # until no row is mid-probe.
        deadline = asyncio.get_running_loop().time() + within
        while not await refused_and_uncounted():
            assert not delivering.done(), "delivery gave up while the receiver was down"
            assert asyncio.get_running_loop().time() < deadline, await world.logs()
            await asyncio.sleep(0.02)

    await until_refused_and_uncounted(20)
    await asyncio.sleep(2.0)  # down for a while: probes find it refusing, nothing is spent
    await until_refused_and_uncounted(5)

    with serve_on_socket(receiver, sock):  # back, on the same port
        await asyncio.wait_for(delivering, 60)
    assert len(receiver.requests) == 1
    (log,) = await world.logs()
    assert (log.status, log.success, log.attempts) == ("sent", True, 1)
    assert (await sub_state(world, sub.id)).is_active


async def test_once_leaves_a_refusing_host_for_the_next_run_and_stops_on_sigterm(
    world: World,
    make_worker: WorkerFactory,
    hook_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPEC §6: `worker --once` drains the outbox and exits. A host that keeps refusing
    connections only postpones its rows (nothing counted), so the pass leaves them to the
    next run after ONCE_MAIL_WAIT_SECONDS, like a channel whose server is down; and a
    SIGTERM (the stop event its handler sets) ends the drain at once."""
    monkeypatch.setattr(runner, "ONCE_MAIL_WAIT_SECONDS", 1.0)
    settings = hook_settings.model_copy(update={"delivery_retry_base_seconds": 0.004})
    sock = bound_socket()  # bound, never listening: every connection is refused
    await baseline(world, make_worker, settings)
    await add_webhook(world, socket_url(sock) + "/in", "json")
    world.sim.add_game("hikaru", end_time=NOW - 120, time_control="180+2", opponent="magnus")
    await world.make_due()
    await asyncio.wait_for(make_worker(settings).run_once(), 60)
    (log,) = await world.logs()
    assert (log.status, log.attempts) == ("pending", 0)
    assert "refus" in (log.error_message or "")

    # Again with the default patience, stopped by the signal's event instead.
    monkeypatch.setattr(runner, "ONCE_MAIL_WAIT_SECONDS", 3600.0)
    worker = make_worker(settings)
    draining = asyncio.create_task(worker.drain_outbox())
    await asyncio.sleep(1.0)
    assert not draining.done()
    worker.stop.set()
    await asyncio.wait_for(draining, 10)
    (log,) = await world.logs()
    assert (log.status, log.attempts) == ("pending", 0)
    sock.close()


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_webhook_deactivates_its_subscription(
    status: int, world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    with serve_receiver("discord") as receiver:
        await baseline(world, make_worker, hook_settings)
        sub = await add_webhook(world, receiver.url("/api/webhooks/1/x"), "discord")
        receiver.then(Reply.json(status, {"message": "Unknown Webhook", "code": 10015}))
        await new_session(world, make_worker, hook_settings)
        assert len(receiver.requests) == 1
        state = await sub_state(world, sub.id)
        assert not state.is_active and state.unsubscribed_at is not None
        (log,) = await world.logs()
        assert log.status == "failed" and log.attempts == 1
        assert log.error_message is not None and log.error_message.startswith(
            f"gone: HTTP {status}"
        )
        # The next session posts nothing there.
        await new_session(world, make_worker, hook_settings, end=NOW - 30)
        assert len(receiver.requests) == 1


async def test_slow_receiver_times_out_and_is_retried(
    world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    settings = hook_settings.model_copy(update={"webhook_timeout_seconds": 0.5})
    with serve_receiver("slack") as receiver:
        await baseline(world, make_worker, settings)
        await add_webhook(world, receiver.url("/services/T/B/X"), "slack")
        receiver.then(Reply(200, b"ok", delay=1.5))
        await new_session(world, make_worker, settings)
        assert len(receiver.requests) == 2
    (log,) = await world.logs()
    assert (log.status, log.attempts) == ("sent", 2)


async def test_three_workers_post_each_message_exactly_once(
    world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    with (
        serve_receiver("discord") as discord,
        serve_receiver("slack") as slack,
        serve_receiver() as generic,
    ):
        await baseline(world, make_worker, hook_settings)
        for i in range(10):
            await add_webhook(world, discord.url(f"/api/webhooks/{i}/x"), "discord")
            await add_webhook(world, slack.url(f"/services/T/B/{i}"), "slack")
            await add_webhook(world, generic.url(f"/in/{i}"), "json")
        world.sim.add_game("hikaru", end_time=NOW - 120)
        await world.make_due()
        workers = [make_worker(hook_settings) for _ in range(3)]
        await asyncio.gather(*(w.run_once() for w in workers))
        for receiver in (discord, slack, generic):
            per_path = Counter(r.path for r in receiver.requests)
            assert len(per_path) == 10 and set(per_path.values()) == {1}
    logs = await world.logs()
    assert len(logs) == 30 and {(log.status, log.attempts) for log in logs} == {("sent", 1)}


async def test_worker_killed_mid_delivery_leaves_the_row_to_another_with_the_same_id(
    world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    """The first worker dies while the receiver holds its request (the answer never
    arrives): the lease runs out, a second worker posts again with the same
    webhook-id, so the receiver sees one message, and the row is sent once."""
    settings = hook_settings.model_copy(update={"delivery_lease_seconds": 1})
    with serve_receiver() as receiver:
        await baseline(world, make_worker, settings)
        await add_webhook(world, receiver.url("/in"), "json")
        world.sim.add_game("hikaru", end_time=NOW - 120)
        await world.make_due()
        doomed = make_worker(settings)
        await doomed.poll_all_once(datetime.now(UTC))
        (row,) = await doomed.deliverer.claim(limit=10)
        receiver.then(Reply(204, delay=3.0))
        task = asyncio.create_task(doomed.deliverer.deliver(row))
        await receiver.wait_for(1)
        task.cancel()  # killed: nothing recorded, the lease still held
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await make_worker(settings).deliverer.claim(limit=10) == []  # leased
        await asyncio.sleep(1.2)
        await make_worker(settings).run_once()
        first, second = await receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    (log,) = await world.logs()
    assert (log.status, log.attempts) == ("sent", 2)


async def test_admin_sees_and_erases_webhook_subscriptions_by_url(
    client: httpx.AsyncClient, admin: dict[str, str], world: World, make_worker: WorkerFactory
) -> None:
    world.sim.add_player("hikaru")
    url = "http://127.0.0.1:9/hooks/a"
    made = await client.post(
        "/api/v1/subscriptions",
        json={"username": "hikaru", "webhook": {"url": url, "format": "json"}},
    )
    assert made.status_code == 202
    await client.post(
        "/api/v1/subscriptions", json={"username": "hikaru", "email": "fan@example.com"}
    )
    listed = await client.get("/api/v1/players/hikaru/subscriptions", headers=admin)
    assert listed.status_code == 200
    rows = {r["channel"]: r for r in listed.json()}
    assert rows["webhook"]["webhook_url"] == url
    assert rows["webhook"]["webhook_format"] == "json"
    assert rows["webhook"]["email"] is None
    assert "webhook_secret" not in rows["webhook"] and "secret" not in rows["webhook"]
    assert rows["email"]["email"] == "fan@example.com"
    logs = await client.get("/api/v1/notifications", headers=admin)
    assert {r["webhook_url"] for r in logs.json()["items"]} == {url, None}

    # Any spelling of the URL finds it (here: the host in decimal).
    gone = await client.delete(
        "/api/v1/webhook-subscribers",
        params={"url": "http://2130706433:9/hooks/a"},
        headers=admin,
    )
    assert gone.status_code == 204
    listed = await client.get("/api/v1/players/hikaru/subscriptions", headers=admin)
    assert [r["channel"] for r in listed.json()] == ["email"]
    async with world.factory() as s:
        left = (await s.scalars(select(NotificationLog))).all()
    assert len(left) == 1  # the email's confirmation; the webhook's log went with it
    assert (
        await client.delete("/api/v1/webhook-subscribers", params={"url": url})
    ).status_code == 401


async def test_filters_and_pause_apply_to_webhooks_as_to_email(
    world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    with serve_receiver() as receiver:
        await baseline(world, make_worker, hook_settings)
        await add_webhook(world, receiver.url("/all"), "json")
        await add_webhook(world, receiver.url("/rapid-only"), "json", time_classes=["rapid"])
        await add_webhook(world, receiver.url("/paused"), "json", paused=True)
        await add_webhook(world, receiver.url("/rated-only"), "json", rated_only=True)
        world.sim.add_game("hikaru", end_time=NOW - 120, time_class="blitz", rated=False)
        await world.make_due()
        await make_worker(hook_settings).run_once()
    assert [r.path for r in receiver.requests] == ["/all"]


async def test_filters_given_at_subscription_are_kept_for_a_webhook(
    client: httpx.AsyncClient, world: World
) -> None:
    world.sim.add_player("hikaru")
    answer = await client.post(
        "/api/v1/subscriptions",
        json={
            "username": "hikaru",
            "webhook": {"url": "http://127.0.0.1:9/in", "format": "slack"},
            "filters": {"time_classes": ["rapid"], "rated_only": True},
        },
    )
    assert answer.status_code == 202
    async with world.factory() as s:
        sub = (await s.scalars(select(EmailSubscription))).one()
    assert (sub.time_classes, sub.rated_only, sub.paused) == (["rapid"], True, False)


async def test_the_unsubscribe_link_in_a_message_ends_the_webhook_subscription(
    client: httpx.AsyncClient, world: World, make_worker: WorkerFactory, hook_settings: Settings
) -> None:
    with serve_receiver("slack") as receiver:
        await baseline(world, make_worker, hook_settings)
        sub = await add_webhook(world, receiver.url("/services/T/B/X"), "slack")
        await new_session(world, make_worker, hook_settings)
        (message,) = receiver.requests
        link = UNSUBSCRIBE_LINK.search(message.body.decode())
        assert link is not None
        page = await client.get(link.group(0).removeprefix("http://testserver"))
        assert page.status_code == 200 and "webhook messages" in page.text
        done = await client.post(
            link.group(0).removeprefix("http://testserver"),
            headers={"accept": "application/json"},
        )
        assert done.status_code == 200 and done.json()["status"] == "unsubscribed"
        assert not (await sub_state(world, sub.id)).is_active
        await new_session(world, make_worker, hook_settings, end=NOW - 30)
        assert len(receiver.requests) == 1
