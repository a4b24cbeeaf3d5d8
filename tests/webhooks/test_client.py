"""The webhook sender against real receivers on loopback (WEBHOOK_ALLOW_PRIVATE=true):
pinning with TLS, the 5 s deadline, the 64 KiB cap, redirects, per-host bounds."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import trustme

from app.webhooks.client import HostOnHold, HostRefused, WebhookSender, WebhookSendError
from app.webhooks.guard import IPAddress
from tests.fakes.server import bound_socket, socket_url
from tests.fakes.webhooks import Receiver, Reply, serve_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver("generic") as r:
        yield r


def sender(**kw: object) -> WebhookSender:
    options: dict[str, object] = {"allow_private": True, "user_agent": "hooks-test/1"}
    options.update(kw)
    return WebhookSender(**options)  # type: ignore[arg-type]


async def test_posts_body_and_headers(receiver: Receiver) -> None:
    s = sender()
    response = await s.post(receiver.url("/in?x=1"), b'{"a":1}', {"webhook-id": "msg_1"})
    await s.aclose()
    assert response.status_code == 200
    (got,) = receiver.requests
    assert (got.method, got.path, got.query, got.body) == ("POST", "/in", "x=1", b'{"a":1}')
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == "msg_1"
    assert got.headers["user-agent"] == "hooks-test/1"
    assert got.headers["host"] == receiver.base_url.removeprefix("http://")


async def test_redirect_to_another_place_is_not_followed(receiver: Receiver) -> None:
    receiver.then(Reply(307, headers=(("location", receiver.url("/elsewhere")),)))
    s = sender()
    response = await s.post(receiver.url("/in"), b"{}")
    await s.aclose()
    assert response.status_code == 307
    assert [r.path for r in receiver.requests] == ["/in"]


async def test_slow_answer_hits_the_deadline(receiver: Receiver) -> None:
    receiver.then(Reply(200, delay=1.5))
    s = sender(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(WebhookSendError, match=r"no answer within 0\.5 s"):
        await s.post(receiver.url(), b"{}")
    assert time.monotonic() - started < 2.0
    await s.aclose()


async def test_slow_drip_body_cannot_stretch_the_deadline(receiver: Receiver) -> None:
    """Each byte arrives well within a read timeout; the whole exchange still ends."""
    receiver.then(Reply(200, body=b"x" * 20, trickle=0.1))
    s = sender(timeout=0.6)
    started = time.monotonic()
    with pytest.raises(WebhookSendError):
        await s.post(receiver.url(), b"{}")
    assert time.monotonic() - started < 2.0
    await s.aclose()


async def test_response_body_read_to_64_kib_at_most(receiver: Receiver) -> None:
    # 1 MiB: sixteen times the cap, small enough that a loaded machine serves it in time.
    receiver.then(Reply(200, body=b"x" * (1024 * 1024)))
    s = sender()
    response = await s.post(receiver.url(), b"{}")
    await s.aclose()
    assert response.status_code == 200
    assert len(response.body) == 64 * 1024
    assert response.truncated


async def test_parallel_requests_per_host_are_bounded(receiver: Receiver) -> None:
    receiver.then(*[Reply(204, delay=0.3) for _ in range(6)])
    s = sender(per_host_concurrency=2)
    results = await asyncio.gather(*(s.post(receiver.url(), b"{}") for _ in range(6)))
    await s.aclose()
    assert [r.status_code for r in results] == [204] * 6
    assert receiver.max_in_flight == 2


async def test_host_on_hold_after_429_is_not_contacted(receiver: Receiver) -> None:
    s = sender()
    origin = s.check(receiver.url()).origin
    s.hold(origin, 30)
    with pytest.raises(HostOnHold) as caught:
        await s.post(receiver.url(), b"{}")
    assert 29 < caught.value.seconds <= 30
    assert receiver.requests == []
    s.hold(origin, 0)  # a hold never shortens
    with pytest.raises(HostOnHold):
        await s.post(receiver.url(), b"{}")
    await s.aclose()


async def test_a_hold_or_an_outage_is_one_servers_not_its_hosts(receiver: Receiver) -> None:
    """Two ports of one host are two servers (review F19: a receiver refusing on one
    port held up every webhook of 127.0.0.1, and a success elsewhere ended its outage)."""
    s = sender()
    other = socket_url(bound_socket()) + "/hook"  # same host, a port that refuses
    with pytest.raises(HostRefused):
        await s.post(other, b"{}")
    s.outage(s.check(other).origin).failed("refused")
    s.hold(s.check(other).origin, 30)
    assert (await s.post(receiver.url(), b"{}")).status_code == 200
    assert s.outage(s.check(other).origin).down  # not ended by the other port's answer
    with pytest.raises(HostOnHold):
        await s.post(other, b"{}")
    await s.aclose()


async def test_short_hold_waits_then_sends(receiver: Receiver) -> None:
    s = sender(short_hold=1.0)
    s.hold(s.check(receiver.url()).origin, 0.3)
    started = time.monotonic()
    assert (await s.post(receiver.url(), b"{}")).status_code == 200
    assert time.monotonic() - started >= 0.25
    await s.aclose()


async def test_nothing_listening_is_a_retryable_error() -> None:
    with serve_receiver() as gone:
        url = gone.url()
    s = sender()
    with pytest.raises(WebhookSendError):
        await s.post(url, b"{}")
    await s.aclose()


# -- pinning with real sockets and TLS ----------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(ca: trustme.CA, tmp_path: Path) -> Iterator[Receiver]:
    """An https receiver on 127.0.0.2 with a certificate for `hooks.localhost` only."""
    pem = tmp_path / "server.pem"
    ca.issue_cert("hooks.localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    with serve_receiver("generic", host="127.0.0.2", ssl_certfile=str(pem)) as r:
        yield r


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_connection_goes_to_the_vetted_address_with_name_kept_for_tls(
    tls_receiver: Receiver, ca: trustme.CA
) -> None:
    """Our resolver says hooks.localhost is 127.0.0.2 (the system would say 127.0.0.1 or
    nothing): the request arrives, so the socket went to the vetted address, and TLS
    verified the certificate against the name, sent as SNI and Host."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> Sequence[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address("127.0.0.2")]

    port = tls_receiver.base_url.rsplit(":", 1)[1]
    s = sender(resolver=resolver, verify=client_tls(ca))
    response = await s.post(f"https://hooks.localhost:{port}/in", b"{}")
    assert response.status_code == 200
    assert tls_receiver.requests[0].headers["host"] == f"hooks.localhost:{port}"
    assert asked == ["hooks.localhost"]

    # A name the certificate does not carry, pinned to the same address: refused by TLS.
    with pytest.raises(WebhookSendError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await s.post(f"https://other.localhost:{port}/in", b"{}")
    await s.aclose()
    assert len(tls_receiver.requests) == 1
