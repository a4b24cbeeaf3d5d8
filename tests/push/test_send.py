"""One push message against a loopback push service that checks VAPID and decrypts
(SPEC §11; RFC 8030 delivery, RFC 8291 aes128gcm, RFC 8292 VAPID)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.channels.base import Verdict
from app.channels.push import PushSender, PushTarget
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
from tests.fakes.push_service import Browser, PushService, serve_push_service
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
