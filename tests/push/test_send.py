"""One push message against a loopback push service that checks VAPID and decrypts
(SPEC §11; RFC 8030 delivery, RFC 8291 aes128gcm, RFC 8292 VAPID)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.channels.base import Verdict
from app.channels.push import PushSender, PushTarget
from app.channels.webhook import post_and_judge
from app.push.message import (
    MAX_PLAINTEXT_BYTES,
    InvalidPushKeys,
    Notification,
    parse_keys,
    topic_for,
)
from app.push.vapid import (
    InvalidVapidKey,
    VapidSigner,
    application_server_key,
    b64url,
    parse_private_key,
    private_pem,
    stored_private_key,
)
from app.webhooks.client import WebhookSender
from app.webhooks.guard import IPAddress
from tests.fakes.push_service import Browser, PushService, serve_push_service
from tests.fakes.server import bound_socket, serve_on_socket, socket_url
from tests.fakes.webhooks import Reply

KEY = ec.generate_private_key(ec.SECP256R1())
SIGNER = VapidSigner(KEY, "mailto:ops@example.com")
ALERT = Notification(
    title="Hikaru is playing",
    body="3+0 blitz vs magnus",
    url="https://www.chess.com/game/live/1",
    tag="player:hikaru",
    unsubscribe_url="https://helper.example/api/v1/unsubscribe?token=t",
    manage_url="https://helper.example/manage?token=m",
)


@pytest.fixture
def service() -> Iterator[PushService]:
    with serve_push_service() as s:
        yield s


def target(browser: Browser) -> PushTarget:
    sub = browser.subscription_json()
    return PushTarget(sub["endpoint"], parse_keys(sub["keys"]["p256dh"], sub["keys"]["auth"]))


async def send(service: PushService, browser: Browser, signer: VapidSigner = SIGNER) -> Verdict:
    sender = WebhookSender(allow_private=True, user_agent="push-test/1")
    try:
        outcome = await PushSender(sender, signer).send(target(browser), ALERT, "hikaru")
    finally:
        await sender.aclose()
    return outcome.verdict


async def test_a_message_decrypts_with_the_browsers_key_and_carries_the_headers(
    service: PushService,
) -> None:
    browser = service.subscribe(SIGNER.public_key)
    assert await send(service, browser) is Verdict.delivered
    (message,) = service.received(browser)
    assert message.json() == {
        "title": "Hikaru is playing",
        "body": "3+0 blitz vs magnus",
        "url": "https://www.chess.com/game/live/1",
        "tag": "player:hikaru",
        "unsubscribe_url": "https://helper.example/api/v1/unsubscribe?token=t",
        "manage_url": "https://helper.example/manage?token=m",
    }
    assert message.headers["content-encoding"] == "aes128gcm"
    assert message.headers["ttl"] == "1800"
    assert message.headers["urgency"] == "high"
    assert message.headers["topic"] == topic_for("hikaru")
    assert message.claims["aud"] == service.base_url
    assert message.claims["sub"] == "mailto:ops@example.com"
    assert time.time() < message.claims["exp"] <= time.time() + 24 * 3600


def test_a_topic_is_32_url_safe_characters_per_player() -> None:
    topics = {topic_for(k) for k in ("hikaru", "magnus", "lichess:drnykterstein")}
    assert len(topics) == 3
    for topic in topics:
        assert len(topic) == 32
        assert set(topic) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert topic_for("hikaru") == topic_for("hikaru")


async def test_each_message_is_encrypted_afresh(service: PushService) -> None:
    browser = service.subscribe(SIGNER.public_key)
    first, second = (PushSender(None, SIGNER).request(target(browser), ALERT, "hikaru")[0]  # type: ignore[arg-type]
                     for _ in range(2))  # fmt: skip
    assert first[:16] != second[:16]  # a new salt
    assert first[21:86] != second[21:86]  # a new sender key


async def test_a_signature_by_another_key_is_refused_by_the_service(service: PushService) -> None:
    browser = service.subscribe(SIGNER.public_key)
    stranger = VapidSigner(ec.generate_private_key(ec.SECP256R1()), "mailto:x@example.com")
    assert await send(service, browser, stranger) is Verdict.failed
    assert service.refused == [(403, "VAPID key does not match the subscription's")]


async def test_an_unsubscribed_browser_is_gone(service: PushService) -> None:
    browser = service.subscribe(SIGNER.public_key)
    service.unsubscribe(browser)
    assert await send(service, browser) is Verdict.gone


@pytest.mark.parametrize("status", [404, 410])
async def test_404_and_410_mean_gone(service: PushService, status: int) -> None:
    browser = service.subscribe(SIGNER.public_key)
    service.then(Reply(status))
    assert await send(service, browser) is Verdict.gone


async def test_429_is_retried_after_the_wait_it_asks_for(service: PushService) -> None:
    browser = service.subscribe(SIGNER.public_key)
    service.then(Reply.rate_limited(42))
    sender = WebhookSender(allow_private=True, user_agent="push-test/1")
    outcome = await PushSender(sender, SIGNER).send(target(browser), ALERT, "hikaru")
    assert (outcome.verdict, outcome.retry_after) == (Verdict.retry, 42.0)
    # The host is held: the next message to it is not even sent.
    again = await PushSender(sender, SIGNER).send(target(browser), ALERT, "hikaru")
    await sender.aclose()
    assert again.verdict is Verdict.paused
    assert service.accepted == 0 and len(service.refused) == 1


async def test_413_fails_without_retry(service: PushService) -> None:
    browser = service.subscribe(SIGNER.public_key)
    service.then(Reply(413))
    assert await send(service, browser) is Verdict.failed


async def test_5xx_is_retried(service: PushService) -> None:
    browser = service.subscribe(SIGNER.public_key)
    service.then(Reply(503))
    assert await send(service, browser) is Verdict.retry


async def test_a_private_endpoint_is_refused_before_any_connection(
    service: PushService,
) -> None:
    browser = service.subscribe(SIGNER.public_key)
    sender = WebhookSender(allow_private=False, user_agent="push-test/1")
    outcome = await PushSender(sender, SIGNER).send(target(browser), ALERT, "hikaru")
    await sender.aclose()
    assert outcome.verdict is Verdict.failed and "refused" in (outcome.error or "")
    assert service.accepted == 0 and service.refused == []


def test_a_long_body_is_cut_to_fit_one_push_message() -> None:
    long = Notification("t", "x" * 10_000, "https://a.example/", "tag")
    assert len(long.encode()) <= MAX_PLAINTEXT_BYTES


# -- the subscriber's keys -------------------------------------------------------------


def good_keys() -> tuple[str, str]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    raw = b"\x04" + point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")
    return b64url(raw), b64url(b"0123456789abcdef")


def test_valid_keys_parse() -> None:
    p256dh, auth = good_keys()
    keys = parse_keys(p256dh, auth)
    assert (keys.p256dh_text, keys.auth_text) == (p256dh, auth)


@pytest.mark.parametrize(
    ("p256dh", "auth", "why"),
    [
        ("not base64!", None, "base64url"),
        (b64url(b"\x04" + b"\x01" * 64), None, "not a point"),
        (b64url(b"\x02" + b"\x01" * 32), None, "uncompressed"),
        (None, b64url(b"short"), "16 bytes"),
        (None, "%%%", "base64url"),
    ],
)
def test_bad_keys_are_refused(p256dh: str | None, auth: str | None, why: str) -> None:
    good_p, good_a = good_keys()
    with pytest.raises(InvalidPushKeys, match=why):
        parse_keys(p256dh or good_p, auth or good_a)


# -- the VAPID key ---------------------------------------------------------------------


def test_the_key_reads_as_pem_or_raw_base64url() -> None:
    raw = b64url(KEY.private_numbers().private_value.to_bytes(32, "big"))
    public = application_server_key(KEY)
    assert application_server_key(parse_private_key(raw)) == public
    assert application_server_key(parse_private_key(private_pem(KEY))) == public
    assert len(public) == 87  # 65 bytes, unpadded base64url


@pytest.mark.parametrize(
    "value", ["", "abc", "-----BEGIN PRIVATE KEY-----\nxx\n", b64url(b"1" * 31)]
)
def test_a_bad_key_is_refused(value: str) -> None:
    with pytest.raises(InvalidVapidKey):
        parse_private_key(value)


def test_development_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = stored_private_key(tmp_path)
    again = stored_private_key(tmp_path)
    assert application_server_key(first) == application_server_key(again)
    assert (tmp_path / "vapid_private_key.pem").stat().st_mode & 0o777 == 0o600


def test_a_token_is_reused_per_audience_then_renewed() -> None:
    first = SIGNER.authorization("https://push.example/a/1", now=1000.0)
    assert SIGNER.authorization("https://push.example/b/2", now=2000.0) == first
    assert SIGNER.authorization("https://other.example/a/1", now=2000.0) != first
    assert SIGNER.authorization("https://push.example/a/1", now=1000.0 + 13 * 3600) != first


async def test_a_push_service_refusing_connections_pauses_its_rows_uncounted() -> None:
    """A push service down as a whole (connection refused: a deploy, a restart) costs no
    attempt, like a webhook host (SPEC §7): the row is paused, the host held so that its
    other rows are not even tried, and once it is back the message goes out."""
    sock = bound_socket()  # bound, not listening yet: connections are refused
    service = PushService()
    service.base_url = socket_url(sock)
    browser = service.subscribe(SIGNER.public_key)
    # Holds longer than a tenth of a second are not waited out in the send (the
    # default waits out a second: the first probe's hold).
    sender = WebhookSender(allow_private=True, user_agent="push-test/1", short_hold=0.1)
    push = PushSender(sender, SIGNER)
    try:
        refused = await push.send(target(browser), ALERT, "hikaru")
        assert refused.verdict is Verdict.paused, refused
        assert "refused" in (refused.error or "") and (refused.retry_after or 0) > 0
        held = await push.send(target(browser), ALERT, "hikaru")
        assert held.verdict is Verdict.paused and "wait" in (held.error or "")
        with serve_on_socket(service, sock, lifespan="off"):  # back, on the same port
            await asyncio.sleep(refused.retry_after or 0)
            delivered = await push.send(target(browser), ALERT, "hikaru")
    finally:
        await sender.aclose()
    assert delivered.verdict is Verdict.delivered, delivered
    assert [m.json()["title"] for m in service.received(browser)] == [ALERT.title]


async def test_a_push_service_refusing_longer_than_a_rows_retry_schedule_spends_attempts() -> None:
    """Refusing past the patience (a row's whole retry schedule) may mean gone for good:
    from then on a refusal is a counted retry, so the row ends after its attempts."""
    sock = bound_socket()
    service = PushService()
    service.base_url = socket_url(sock)
    browser = service.subscribe(SIGNER.public_key)
    sender = WebhookSender(allow_private=True, user_agent="push-test/1")
    push = PushSender(sender, SIGNER, refusal_patience=0.2)
    try:
        first = await push.send(target(browser), ALERT, "hikaru")
        assert first.verdict is Verdict.paused
        await asyncio.sleep(first.retry_after or 0)  # the probe after the hold
        later = await push.send(target(browser), ALERT, "hikaru")
    finally:
        await sender.aclose()
        sock.close()
    assert later.verdict is Verdict.retry and "refused" in (later.error or ""), later


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.169.254", "::1"])
async def test_an_endpoint_resolving_to_a_private_address_fails_as_a_webhook_does(
    address: str,
) -> None:
    """A push endpoint whose name resolves (now) to a private or loopback address while
    WEBHOOK_ALLOW_PRIVATE is off is refused as a webhook URL is, by the one shared send
    (app.channels.webhook.post_and_judge): the row fails at once, nothing is sent,
    no attempt is left to retry."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address(address)]

    endpoint = "https://push.example.net/send/abc"
    keys = PushService().subscribe(SIGNER.public_key).subscription_json()["keys"]
    browser_keys = parse_keys(keys["p256dh"], keys["auth"])
    sender = WebhookSender(allow_private=False, user_agent="push-test/1", resolver=resolver)
    try:
        pushed = await PushSender(sender, SIGNER).send(
            PushTarget(endpoint, browser_keys), ALERT, "hikaru"
        )
        posted = await post_and_judge(
            sender, "https://hooks.example.net/in", b"{}", {}, refusal_patience=60.0
        )
    finally:
        await sender.aclose()
    for outcome in (pushed, posted):
        assert outcome.verdict is Verdict.failed, outcome
        assert "refused" in (outcome.error or "") and "address" in (outcome.error or "")
    assert asked == ["push.example.net", "hooks.example.net"]
