"""A Web Push service on loopback that behaves like the real ones (RFC 8030/8291/8292).

It hands out subscriptions the way a browser's `PushManager.subscribe` would (an
endpoint URL on this service, a fresh P-256 key pair and a 16-byte auth secret per
subscription, bound to the application server key it was made with), and judges every
push request as FCM / Mozilla autopush do:

- `Authorization: vapid t=<JWT>, k=<key>`: the JWT must be ES256-signed by `k`, `k`
  must be the key the subscription was made with (else 403), `aud` the endpoint's
  origin, `exp` in the future and at most 24 h ahead, `sub` a mailto: or https: URL
  (else 401);
- `Content-Encoding: aes128gcm` (else 415), a `TTL` header (else 400), `Urgency` one of
  RFC 8030's four, `Topic` at most 32 base64url characters (else 400), a body of at most
  4096 bytes (else 413);
- the body is decrypted with the subscriber's private key and auth secret (RFC 8291);
  one that does not decrypt is refused (400). With ``decrypt_every=n`` only every n-th
  message is decrypted (the benchmark: the sample proves the rest were encrypted alike);
- an unsubscribed browser's endpoint answers 410; scripted replies (429 with
  `Retry-After`, 413, 500...) answer the next requests first.

Accepted messages answer 201 with a `Location`. :func:`serve_push_service` runs it in a
thread; :class:`PushServiceChild` in a process of its own (the benchmark).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import decode as jwt_decode

from tests.fakes.asgi import header_map, not_http, read_body, respond, wait_until
from tests.fakes.child_server import ChildServer, answer_commands
from tests.fakes.server import run_asgi_in_thread
from tests.fakes.webhooks import Reply

_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_URGENCIES = {"very-low", "low", "normal", "high"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscription as the browser holds it: the private half stays here."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str
    active: bool = True

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _b64(point)

    def subscription_json(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives a page."""
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": self.p256dh, "auth": _b64(self.auth)},
        }


@dataclass(frozen=True)
class PushMessage:
    subscription_id: str
    headers: dict[str, str]
    claims: dict[str, Any]
    plaintext: bytes | None  # None when this one was not in the decrypted sample
    size: int
    at: float

    def json(self) -> Any:
        assert self.plaintext is not None, "this message was not decrypted"
        return json.loads(self.plaintext)


@dataclass
class PushService:
    base_url: str = ""
    browsers: dict[str, Browser] = field(default_factory=dict)
    messages: list[PushMessage] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (status, why)
    script: deque[Reply] = field(default_factory=deque)
    decrypt_every: int = 1
    keep_messages: bool = True
    accepted: int = 0
    decrypted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the browser side -----------------------------------------------------------

    def subscribe(self, application_server_key: str) -> Browser:
        """A new subscription, as `PushManager.subscribe({applicationServerKey})` makes."""
        with self._lock:
            sid = f"s{len(self.browsers) + 1}"
            browser = Browser(
                id=sid,
                endpoint=f"{self.base_url}/wpush/v2/{sid}",
                private_key=ec.generate_private_key(ec.SECP256R1()),
                auth=os.urandom(16),
                application_server_key=application_server_key,
            )
            self.browsers[sid] = browser
        return browser

    def unsubscribe(self, browser: Browser) -> None:
        """The browser dropped the subscription: its endpoint now answers 410."""
        browser.active = False

    def then(self, *replies: Reply) -> PushService:
        self.script.extend(replies)
        return self

    def received(self, browser: Browser) -> list[PushMessage]:
        return [m for m in self.messages if m.subscription_id == browser.id]

    async def wait_for(self, count: int, within: float = 10.0) -> list[PushMessage]:
        await wait_until(
            lambda: self.accepted >= count,
            within,
            lambda: f"{self.accepted} push messages arrived, expected {count}",
        )
        return list(self.messages)

    def clear_counts(self) -> None:
        with self._lock:
            self.accepted = self.decrypted = 0
            self.refused.clear()
            self.messages.clear()

    def counts(self) -> dict[str, int]:
        return {
            "messages": self.accepted,
            "decrypted": self.decrypted,
            "refused": len(self.refused),
        }

    # -- the service side -----------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await not_http(scope, receive, send):
            return
        body = await read_body(receive)
        status, extra, why = self._judge(scope["method"], scope["path"], header_map(scope), body)
        if status >= 300:
            with self._lock:
                self.refused.append((status, why))
        await respond(send, status, why.encode(), extra)

    def _judge(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], str]:
        if self.script:
            reply = self.script.popleft()
            return reply.status, [(k.encode(), v.encode()) for k, v in reply.headers], "scripted"
        sid = path.rsplit("/", 1)[-1]
        browser = self.browsers.get(sid)
        if method != "POST" or not path.startswith("/wpush/v2/") or browser is None:
            return 404, [], "no such subscription"
        if not browser.active:
            return 410, [], "push subscription has unsubscribed or expired"
        problem, claims = self._check_vapid(browser, headers.get("authorization", ""))
        if problem is not None:
            return problem
        refusal = _check_headers(headers, body)
        if refusal is not None:
            return refusal[0], [], refusal[1]
        plaintext: bytes | None = None
        with self._lock:
            self.accepted += 1
            number = self.accepted
        if number % self.decrypt_every == 0 or self.decrypt_every == 1:
            try:
                plaintext = http_ece.decrypt(
                    body,
                    private_key=browser.private_key,
                    auth_secret=browser.auth,
                    version="aes128gcm",
                )
            except Exception as exc:
                with self._lock:
                    self.accepted -= 1
                return 400, [], f"cannot decrypt: {type(exc).__name__}"
            with self._lock:
                self.decrypted += 1
        if self.keep_messages:
            with self._lock:
                self.messages.append(
                    PushMessage(sid, headers, claims, plaintext, len(body), time.monotonic())
                )
        location = f"{self.base_url}/m/{sid}/{number}".encode()
        return 201, [(b"location", location)], ""

    def _check_vapid(
        self, browser: Browser, authorization: str
    ) -> tuple[tuple[int, list[tuple[bytes, bytes]], str] | None, dict[str, Any]]:
        scheme, _, params = authorization.partition(" ")
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if scheme.lower() != "vapid" or "t" not in parts or "k" not in parts:
            return (401, [], "missing vapid authorization"), {}
        if parts["k"] != browser.application_server_key:
            return (403, [], "VAPID key does not match the subscription's"), {}
        try:
            claims = jwt_decode(parts["t"], parts["k"])
        except Exception:
            return (401, [], "bad VAPID signature"), {}
        origin = self.base_url.lower()
        now = time.time()
        if claims.get("aud") != origin:
            return (401, [], f"aud {claims.get('aud')!r} is not {origin!r}"), {}
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now or exp > now + 24 * 3600 + 60:
            return (401, [], "exp missing, past or more than 24 h ahead"), {}
        sub = str(claims.get("sub", ""))
        if not (sub.startswith("mailto:") or sub.startswith("https://")):
            return (401, [], "sub must be mailto: or https:"), {}
        return None, claims


def _check_headers(headers: dict[str, str], body: bytes) -> tuple[int, str] | None:
    if headers.get("content-encoding", "").lower() != "aes128gcm":
        return 415, "Content-Encoding must be aes128gcm"
    if not headers.get("ttl", "").isdigit():
        return 400, "TTL header missing or invalid"
    if headers.get("urgency", "normal") not in _URGENCIES:
        return 400, "bad Urgency"
    if "topic" in headers and not _TOPIC.match(headers["topic"]):
        return 400, "bad Topic"
    if len(body) > 4096:
        return 413, "payload too large"
    return None


@contextmanager
def serve_push_service(host: str = "127.0.0.1", **options: Any) -> Iterator[PushService]:
    service = PushService(**options)
    with run_asgi_in_thread(service, host) as base_url:
        service.base_url = base_url
        yield service


# -- in a process of its own (the benchmark) ----------------------------------------------


def _serve_child(conn: Connection, decrypt_every: float) -> None:
    import uvicorn

    from tests.fakes.server import bound_socket, socket_url

    service = PushService(decrypt_every=int(decrypt_every) or 1, keep_messages=False)
    sock = bound_socket()
    service.base_url = socket_url(sock)
    config = uvicorn.Config(service, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    conn.send(sock.getsockname()[:2])

    def subscribe_many() -> Any:
        key, n = conn.recv()
        return [service.subscribe(key).subscription_json() for _ in range(n)]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    answer_commands(
        conn,
        {
            "counts": service.counts,
            "clear": service.clear_counts,
            "subscribe": subscribe_many,
        },
        stop,
    )


class PushServiceChild(ChildServer):
    """The push service in a child process (its own GIL): `subscribe(key, n)` makes n
    subscriptions; `wait_for(n)` waits until n messages were accepted."""

    serve = _serve_child
    counts_command = "counts"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def subscribe(self, application_server_key: str, n: int) -> list[dict[str, Any]]:
        self.conn.send("subscribe")
        self.conn.send((application_server_key, n))
        result: list[dict[str, Any]] = self.conn.recv()
        return result
