"""Which webhook URLs may be called, and at which address (SPEC §9: the SSRF defence).

A subscriber chooses the URL our worker posts to, so the URL must never let them reach
what only our machine can reach: loopback, private networks, cloud metadata
(169.254.169.254), multicast, reserved or unspecified addresses, in whatever spelling
(decimal ``2130706433``, octal ``0177.0.0.1``, hex ``0x7f000001``, ``127.1``, ``[::1]``,
``[::ffff:127.0.0.1]``, ``localhost.``).

Two steps, both refusing before any packet leaves:

1. :func:`parse_target` (no I/O) reads the URL the way browsers do (the WHATWG URL
   standard, via ``ada-url``, which turns every numeric spelling into one canonical
   address), checks that httpx reads the same host and port, and refuses a literal
   address or a ``localhost`` name at once.
2. :func:`vet_addresses` judges every address a name resolves to; one bad address
   refuses the whole name. The sender then connects to the vetted address itself, so
   a second DNS answer (rebinding) is never asked for.

``allow_private`` (``WEBHOOK_ALLOW_PRIVATE=true``) lifts the address rules and admits
``http``, for local use and tests only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import ada_url
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

MAX_URL_LENGTH = 2000

# The rules above as far as a pattern can state them, for the OpenAPI document (SPEC §9):
# https, no user name, a dotted host name whose last label is a word (an address
# literal is refused unless public; no schema can say which), a port, then the URL
# characters that need no percent-encoding. Names that do not resolve, or resolve to a
# forbidden address, are still 422. With `allow_private` only the scheme is stated.
PUBLIC_URL_PATTERN = (
    r"^https://([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z][A-Za-z0-9-]*(:[1-9][0-9]{0,3})?"
    r"([/?#][A-Za-z0-9._~!$&()*+,;=:@/?%-]*)?$"
)
# What a subscriber may give: the normal form may add the root path's "/" and must
# still fit MAX_URL_LENGTH (the column's size).
MAX_GIVEN_URL_LENGTH = MAX_URL_LENGTH - 1
PRIVATE_URL_PATTERN = r"^https?://"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the low bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use only


class RefusedURL(ValueError):
    """A URL the service will not call. The message says why, for the subscriber."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A parsed, canonical webhook URL.

    ``host`` is the ASCII host without brackets; ``ip`` is set when the URL names an
    address literally (then no resolver is ever asked).
    """

    url: str
    scheme: str
    host: str
    port: int
    ip: IPAddress | None

    @property
    def origin(self) -> str:
        """Host and port: what one server answers for (its pool, its 429 wait, its being
        down). Two ports of one host are two servers."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why a webhook may not be sent to ``ip`` (None: a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped IPv6 address"
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return forbidden_reason(ip.ipv4_mapped)
        for inner in _embedded_ipv4(ip):
            if (reason := forbidden_reason(inner)) is not None:
                return f"{reason} (carried inside an IPv6 address)"
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if ip.is_site_local:
            return "a site-local address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a special-purpose address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def _is_local_name(host: str) -> bool:
    # RFC 6761 §6.3: localhost and every name under it are the machine itself.
    return host == "localhost" or host.endswith(".localhost")


def _host(url: ada_url.URL, *, allow_private: bool) -> tuple[str, IPAddress | None]:
    """The URL's host (a canonical name, or an address) after the name rules."""
    hostname = url.hostname
    if url.host_type == ada_url.HostType.IPV4:
        return hostname, ipaddress.IPv4Address(hostname)
    if url.host_type == ada_url.HostType.IPV6:
        return hostname, ipaddress.IPv6Address(hostname.strip("[]"))
    # `localhost.` and `localhost` are one name: drop the root label's dot.
    if hostname.endswith("."):
        hostname = hostname.rstrip(".")
        url.hostname = hostname
    if _is_local_name(hostname) and not allow_private:
        raise RefusedURL("the URL names this machine (localhost)")
    if not hostname or ("." not in hostname and not allow_private):
        raise RefusedURL("the URL must name a public host (a dotted domain name)")
    return hostname, None


def parse_target(raw: str, *, allow_private: bool) -> WebhookTarget:
    """Parse and check a webhook URL without any I/O; raises :class:`RefusedURL`."""
    raw = raw.strip()
    if len(raw) > MAX_URL_LENGTH:
        raise RefusedURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not ada_url.check_url(raw):
        raise RefusedURL("not a valid URL")
    url = ada_url.URL(raw)
    scheme = url.protocol.rstrip(":")
    if scheme not in _DEFAULT_PORTS or (scheme == "http" and not allow_private):
        raise RefusedURL("only https:// URLs are accepted")
    if url.username or url.password:
        raise RefusedURL("the URL must not carry a user name or password")
    url.hash = ""
    hostname, ip = _host(url, allow_private=allow_private)
    href = url.href
    if len(href) > MAX_URL_LENGTH:
        raise RefusedURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    port = int(url.port) if url.port else _DEFAULT_PORTS[scheme]
    host = str(ip) if ip is not None else hostname
    # The request is built by httpx from the same text: it must read the same place.
    seen = httpx.URL(href)
    if (
        seen.scheme != scheme
        or seen.raw_host.decode("ascii", "replace").lower() != host
        or (seen.port or _DEFAULT_PORTS[scheme]) != port
    ):
        raise RefusedURL("the URL is ambiguous")
    if ip is not None and not allow_private and (reason := forbidden_reason(ip)) is not None:
        raise RefusedURL(f"the URL points at {reason}")
    return WebhookTarget(url=href, scheme=scheme, host=host, port=port, ip=ip)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class UnresolvableHost(OSError):
    """The host name did not resolve (may be temporary)."""


class LookupUnavailable(Exception):
    """The name could not be looked up now (the resolver failed or timed out, not "no
    such name"): nothing is known about the host, so nothing can be refused or stored."""


def _temporary(exc: BaseException) -> bool:
    cause = exc.__cause__
    if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError):
        return True
    return isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_AGAIN


async def vet_addresses(
    target: WebhookTarget, resolver: Resolver, *, allow_private: bool
) -> IPAddress:
    """The address to connect to: the literal one, or a resolved one after checking ALL.

    Raises :class:`RefusedURL` if any resolved address is forbidden and
    :class:`UnresolvableHost` if the name has no address.
    """
    if target.ip is not None:
        return target.ip
    try:
        addresses = list(await resolver(target.host, target.port))
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve {target.host}: {exc}") from exc
    if not addresses:
        raise UnresolvableHost(f"{target.host} has no address")
    if not allow_private:
        for address in addresses:
            if (reason := forbidden_reason(address)) is not None:
                raise RefusedURL(f"{target.host} resolves to {reason}")
    return addresses[0]


async def check_webhook_url(
    raw: str, *, allow_private: bool, resolver: Resolver, within: float = 5.0
) -> WebhookTarget:
    """Subscription-time check: the URL and the addresses its host has now.

    Raises :class:`RefusedURL` for a refused URL or a name that does not exist, and
    :class:`LookupUnavailable` when the resolver cannot answer now (try again later).
    Delivery checks again before every request: DNS answers may change after this.
    """
    target = parse_target(raw, allow_private=allow_private)
    try:
        async with asyncio.timeout(within):
            await vet_addresses(target, resolver, allow_private=allow_private)
    except (UnresolvableHost, TimeoutError) as exc:
        if _temporary(exc):
            raise LookupUnavailable(f"the host {target.host} cannot be looked up now") from exc
        raise RefusedURL(f"the host {target.host} cannot be resolved") from exc
    return target
