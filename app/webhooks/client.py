"""The one way the service posts to a webhook URL (SPEC §9).

Every request: the URL is checked (:mod:`app.webhooks.guard`), the host resolved once
and every address vetted, and the connection opened to the vetted address itself
(the ``Host`` header and TLS SNI/certificate check keep the name), so a DNS answer
that changes after the check is never used. No redirects are followed, the whole
exchange has one deadline (5 s by default, a slow-drip server cannot stretch it) and
at most 64 KiB of the answer is read.

Each origin (scheme, host and port: one server) has its own lane: a connection pool (a
TLS connection verified for one name never carries a request for another name on the
same address), a bound on parallel requests, a hold after a 429 during which requests
are not sent at all, and whether it refuses connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.backoff import Outage
from app.config import Settings
from app.webhooks.guard import (
    IPAddress,
    Resolver,
    UnresolvableHost,
    WebhookTarget,
    parse_target,
    system_resolver,
    vet_addresses,
)

log = logging.getLogger(__name__)

TransportFactory = Callable[[], httpx.AsyncBaseTransport]

# What httpx.AsyncClient would add to every request (the bytes on the wire stay as
# they were when the lanes were clients).
_DEFAULT_HEADERS = {"accept": "*/*", "connection": "keep-alive"}

# A host refusing connections is probed after this long, doubling up to the maximum.
REFUSED_FIRST = 1.0
REFUSED_MAX = 30.0


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status_code: int
    headers: httpx.Headers
    body: bytes  # at most the configured maximum
    truncated: bool  # reading stopped at the cap


class WebhookSendError(Exception):
    """Nothing usable came back (network error, timeout, no address): worth retrying."""


class HostRefused(WebhookSendError):
    """The host refused the connection: down as a whole (a deploy, a restart), which
    says nothing about the message."""

    def __init__(self, host: str, detail: str) -> None:
        super().__init__(f"{host} refused the connection: {detail}")
        self.host = host


class HostOnHold(Exception):
    """The host asked us to slow down (429) and its wait is not over; nothing was sent."""

    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(f"{host} asked us to wait {seconds:.1f} s more")
        self.host = host
        self.seconds = seconds


@dataclass
class _Lane:
    # The host's connection pool, used directly: a pinned POST needs none of
    # httpx.AsyncClient's layers (cookies, auth, redirects, merged defaults), which cost
    # ~10% of a push request's CPU (py-spy, bench.push_fanout).
    transport: httpx.AsyncBaseTransport
    slots: asyncio.Semaphore
    in_flight: int = 0
    hold_until: float = 0.0  # monotonic
    last_used: float = field(default_factory=time.monotonic)
    # The host refusing connections: its requests wait while one probes it.
    outage: Outage = field(default_factory=lambda: Outage(REFUSED_FIRST, REFUSED_MAX))


class WebhookSender:
    """Posts bodies to vetted webhook URLs. One per process; close with :meth:`aclose`."""

    def __init__(
        self,
        *,
        allow_private: bool,
        user_agent: str,
        timeout: float = 5.0,
        max_response_bytes: int = 64 * 1024,
        per_host_concurrency: int = 4,
        resolver: Resolver | None = None,
        transport_factory: TransportFactory | None = None,
        verify: Any = True,
        max_hosts: int = 512,
        short_hold: float = 1.0,
    ) -> None:
        self.allow_private = allow_private
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.per_host_concurrency = per_host_concurrency
        self.resolver: Resolver = resolver or system_resolver
        self._transport_factory = transport_factory
        self._verify = verify
        self._max_hosts = max_hosts
        self._short_hold = short_hold
        self._lanes: OrderedDict[str, _Lane] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()
        # Each phase of an exchange (pool, connect, write, read) within the deadline;
        # the whole exchange is bounded by it too (_exchange).
        self._timeouts = httpx.Timeout(timeout).as_dict()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WebhookSender:
        options: dict[str, Any] = {
            "allow_private": settings.webhook_allow_private,
            "user_agent": settings.user_agent,
            "timeout": settings.webhook_timeout_seconds,
            "max_response_bytes": settings.webhook_max_response_bytes,
            "per_host_concurrency": settings.webhook_per_host_concurrency,
        }
        options.update(overrides)
        return cls(**options)

    def check(self, url: str) -> WebhookTarget:
        """Parse and check a URL with no I/O; raises ``RefusedURL``."""
        return parse_target(url, allow_private=self.allow_private)

    async def vet(self, url: str) -> IPAddress:
        """Check a URL and the addresses its host resolves to (no connection)."""
        target = self.check(url)
        return await vet_addresses(target, self.resolver, allow_private=self.allow_private)

    def outage(self, origin: str) -> Outage:
        """Whether ``origin`` (a target's scheme, host and port) is refusing connections
        (its state, kept with its lane)."""
        return self._lane(origin).outage

    def hold(self, origin: str, seconds: float) -> None:
        """After a 429: send nothing more to ``origin`` for ``seconds``."""
        lane = self._lane(origin)
        lane.hold_until = max(lane.hold_until, time.monotonic() + seconds)

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> WebhookResponse:
        """POST ``body`` to ``url``. Any HTTP status is returned; ``RefusedURL`` for a
        URL the rules refuse, :class:`HostOnHold` while the host's 429 wait lasts,
        :class:`WebhookSendError` when no answer came."""
        target = self.check(url)
        lane = self._lane(target.origin)
        wait = lane.hold_until - time.monotonic()
        if wait > self._short_hold:
            raise HostOnHold(target.origin, wait)
        lane.in_flight += 1
        try:
            async with lane.slots:
                wait = lane.hold_until - time.monotonic()
                if wait > 0:  # a short hold (or one that began while we queued)
                    if wait > self._short_hold:
                        raise HostOnHold(target.origin, wait)
                    await asyncio.sleep(wait)
                lane.last_used = time.monotonic()
                response = await self._exchange(lane.transport, target, body, headers or {})
        finally:
            lane.in_flight -= 1
        if lane.outage.down:
            down = lane.outage.recovered() or 0.0
            log.info("%s accepts connections again after %.1fs", target.origin, down)
        return response

    async def _exchange(
        self,
        transport: httpx.AsyncBaseTransport,
        target: WebhookTarget,
        body: bytes,
        headers: Mapping[str, str],
    ) -> WebhookResponse:
        try:
            async with asyncio.timeout(self.timeout):
                address = await vet_addresses(
                    target, self.resolver, allow_private=self.allow_private
                )
                return await self._send(transport, target, address, body, headers)
        except TimeoutError as exc:
            raise WebhookSendError(f"no answer within {self.timeout:g} s") from exc
        except UnresolvableHost as exc:
            raise WebhookSendError(str(exc)) from exc
        except httpx.ConnectError as exc:
            refused = _refusal(exc)
            if refused is not None:
                raise HostRefused(target.origin, refused) from exc
            raise WebhookSendError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        except httpx.HTTPError as exc:
            raise WebhookSendError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc

    async def _send(
        self,
        transport: httpx.AsyncBaseTransport,
        target: WebhookTarget,
        address: IPAddress,
        body: bytes,
        headers: Mapping[str, str],
    ) -> WebhookResponse:
        pinned = httpx.URL(target.url).copy_with(host=str(address))
        extensions: dict[str, Any] = {"timeout": self._timeouts}
        if target.ip is None:
            # TLS: SNI and the certificate check use the name, not the pinned address.
            extensions["sni_hostname"] = target.host
        request = httpx.Request(
            "POST",
            pinned,
            content=body,
            headers={
                **_DEFAULT_HEADERS,
                "content-type": "application/json",
                "user-agent": self.user_agent,
                **headers,
                "host": target.host_header,
                "accept-encoding": "identity",  # no decompression bomb
            },
            extensions=extensions,
        )
        # Straight to the pool: no redirect is ever followed (a 3xx is an answer like
        # any other), no cookie is kept, no proxy from the environment is consulted.
        response = await transport.handle_async_request(request)
        chunks: list[bytes] = []
        size = 0
        truncated = False
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size >= self.max_response_bytes:  # the cap: the rest is never read
                    truncated = True
                    break
        finally:
            await response.aclose()
        data = b"".join(chunks)[: self.max_response_bytes]
        return WebhookResponse(response.status_code, response.headers, data, truncated)

    def _lane(self, origin: str) -> _Lane:
        lane = self._lanes.get(origin)
        if lane is not None:
            self._lanes.move_to_end(origin)
            return lane
        self._evict_idle()
        transport = (
            self._transport_factory()
            if self._transport_factory is not None
            else httpx.AsyncHTTPTransport(
                verify=self._verify,
                retries=0,
                trust_env=False,
                limits=httpx.Limits(
                    max_connections=self.per_host_concurrency,
                    max_keepalive_connections=self.per_host_concurrency,
                ),
            )
        )
        lane = _Lane(transport=transport, slots=asyncio.Semaphore(self.per_host_concurrency))
        self._lanes[origin] = lane
        return lane

    def _evict_idle(self) -> None:
        now = time.monotonic()
        for host in list(self._lanes):
            if len(self._lanes) < self._max_hosts:
                return
            lane = self._lanes[host]
            if lane.in_flight == 0 and lane.hold_until <= now:
                del self._lanes[host]
                task = asyncio.get_running_loop().create_task(lane.transport.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        lanes = list(self._lanes.values())
        self._lanes.clear()
        for lane in lanes:
            await lane.transport.aclose()


def _refusal(exc: BaseException) -> str | None:
    """The refusal behind a failed connection (ECONNREFUSED), if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return str(current) or "connection refused"
        current = current.__cause__ or current.__context__
    return None
