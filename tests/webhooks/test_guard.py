"""SSRF defence (SPEC §9, issue 13 item 4): hostile URLs are refused before any
resolver or connection is reached; names are refused if ANY of their addresses is
forbidden; the connection goes to the vetted address, so a changed DNS answer is
never used. No test here sends a packet anywhere (the transports are tripwires)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.webhooks.client import WebhookSender
from app.webhooks.guard import (
    IPAddress,
    RefusedURL,
    forbidden_reason,
    parse_target,
    vet_addresses,
)

PUBLIC = "93.184.215.14"  # a public address: only ever handed to a recording transport

# Every spelling of a forbidden place we know of. None may reach a resolver or a socket.
HOSTILE_LITERALS = [
    # loopback, in every spelling
    "https://127.0.0.1/hook",
    "https://2130706433/",  # decimal
    "https://0177.0.0.1/",  # octal
    "https://0177.0000.0000.0001/",
    "https://0x7f000001/",  # hex
    "https://0x7f.0x0.0x0.0x1/",
    "https://0x7F.1/",
    "https://127.1/",  # short forms
    "https://127.0.1/",
    "https://%31%32%37.0.0.1/",  # percent-encoded host
    "https://127.0.0.1./",
    "https://127.255.255.254:8443/",
    "https://[::1]/",
    "https://[0:0:0:0:0:0:0:1]/",
    "https://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "https://[::ffff:7f00:1]/",
    "https://[0:0:0:0:0:ffff:127.0.0.1]/",
    "https://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
    "https://[64:ff9b::127.0.0.1]/",  # NAT64
    "https://[2002:7f00:1::]/",  # 6to4
    "https://localhost/",
    "https://localhost./",
    "https://LOCALHOST:443/",
    "https://hooks.localhost/",
    "https://a.b.localhost./x",
    # link-local and cloud metadata
    "https://169.254.169.254/latest/meta-data/",
    "https://2852039166/latest/meta-data/",  # 169.254.169.254 in decimal
    "https://0xa9fea9fe/",
    "https://0251.0376.0251.0376/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:a9fe:a9fe]/",
    "https://[fe80::1]/",
    "https://[fd00:ec2::254]/",  # AWS's IPv6 metadata address (unique local)
    # private ranges
    "https://10.0.0.1/",
    "https://10.255.255.255/",
    "https://012.0.0.1/",  # 10.0.0.1 in octal
    "https://172.16.0.1/",
    "https://172.31.255.254/",
    "https://192.168.1.1/",
    "https://0xc0a80101/",  # 192.168.1.1 in hex
    "https://100.64.0.1/",  # carrier-grade NAT
    "https://[fc00::1]/",
    "https://[::ffff:10.0.0.1]/",
    "https://[fec0::1]/",  # site-local
    # unspecified, multicast, reserved, broadcast
    "https://0.0.0.0/",
    "https://0/",
    "https://[::]/",
    "https://224.0.0.1/",
    "https://239.255.255.250/",
    "https://[ff02::1]/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://192.0.2.1/",  # documentation
    "https://[2001:db8::1]/",
    # not https, not a host we can call, or hiding one behind another
    "http://discord.com/api/webhooks/1/x",
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "https://",
    "https:///path",
    "not a url",
    "https://intranet/",
    "https://user:pass@example.com/",
    "https://example.com@127.0.0.1/",
    "https://127.0.0.1:443@example.com/",
    "https://[fe80::1%25eth0]/",
    "https://" + "a" * 2100 + ".com/",
]


class Tripwire:
    """A resolver and a transport that fail the test if they are reached."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def resolver(self, host: str, port: int) -> Sequence[IPAddress]:
        self.reached.append(f"resolve {host}")
        raise AssertionError(f"the resolver was asked for {host!r}")

    def transport(self) -> httpx.AsyncBaseTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            self.reached.append(f"connect {request.url}")
            raise AssertionError(f"a connection was attempted to {request.url}")

        return httpx.MockTransport(handler)


class ScriptedDNS:
    """A resolver whose answers are given by the test (and may change between calls)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.asked.append(host)
        queue = self.answers[host]
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(a) for a in current]


class Recorder:
    """A transport that records requests and answers without sending anything."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.responses = list(responses)

    def transport(self) -> httpx.AsyncBaseTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            if not self.responses:
                raise AssertionError(f"unexpected request to {request.url}")
            canned = self.responses.pop(0)  # as a real transport answers: a fresh stream
            return httpx.Response(
                canned.status_code, headers=canned.headers, stream=httpx.ByteStream(canned.content)
            )

        return httpx.MockTransport(handler)


@pytest.mark.parametrize("url", HOSTILE_LITERALS)
async def test_hostile_url_refused_before_resolver_or_connection(url: str) -> None:
    wire = Tripwire()
    sender = WebhookSender(
        allow_private=False,
        user_agent="test",
        resolver=wire.resolver,
        transport_factory=wire.transport,
    )
    with pytest.raises(RefusedURL):
        parse_target(url, allow_private=False)
    with pytest.raises(RefusedURL):
        await sender.post(url, b"{}")
    with pytest.raises(RefusedURL):
        await sender.vet(url)
    await sender.aclose()
    assert wire.reached == []


# Names whose DNS answers point somewhere forbidden: ANY bad address refuses the name.
HOSTILE_ANSWERS = {
    "rebind.example.com": ["127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "mixed.example.com": [PUBLIC, "10.0.0.7"],
    "mixed-late.example.com": [PUBLIC, PUBLIC, "169.254.169.254"],
    "v6.example.com": ["::1"],
    "v6-mapped.example.com": ["::ffff:192.168.0.10"],
    "v6-ula.example.com": ["2606:4700::1111", "fd12:3456::1"],
    "zero.example.com": ["0.0.0.0"],
    "multicast.example.com": ["224.0.0.251"],
    "cgnat.example.com": ["100.100.100.200"],  # Alibaba Cloud's metadata service
}


@pytest.mark.parametrize(("host", "answer"), sorted(HOSTILE_ANSWERS.items()))
async def test_name_with_any_forbidden_address_is_refused_before_connection(
    host: str, answer: list[str]
) -> None:
    wire = Tripwire()
    dns = ScriptedDNS({host: [answer]})
    sender = WebhookSender(
        allow_private=False, user_agent="test", resolver=dns, transport_factory=wire.transport
    )
    with pytest.raises(RefusedURL, match="resolves to"):
        await sender.post(f"https://{host}/hook", b"{}")
    await sender.aclose()
    assert dns.asked == [host]
    assert wire.reached == []


async def test_dns_answer_that_changes_after_the_check_is_never_used() -> None:
    """Rebinding: the first answer is vetted and connected to; the HTTP stack never asks
    DNS again (the request it gets names the address). A later answer pointing inside
    is refused before any connection."""
    dns = ScriptedDNS({"hooks.example.com": [[PUBLIC], ["127.0.0.1"], ["169.254.169.254"]]})
    recorder = Recorder(httpx.Response(204))
    sender = WebhookSender(
        allow_private=False, user_agent="test", resolver=dns, transport_factory=recorder.transport
    )
    response = await sender.post("https://hooks.example.com/hook?x=1", b'{"a":1}')
    assert response.status_code == 204
    (request,) = recorder.requests
    assert request.url.host == PUBLIC  # connected to the vetted address...
    assert request.url.path == "/hook" and request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.example.com"  # ...in the name of the host
    assert request.extensions["sni_hostname"] == "hooks.example.com"  # TLS checks the name
    assert dns.asked == ["hooks.example.com"]  # one lookup per request, ours

    for _ in range(2):  # the answer changed: refused, nothing sent
        with pytest.raises(RefusedURL):
            await sender.post("https://hooks.example.com/hook", b"{}")
    assert len(recorder.requests) == 1
    await sender.aclose()


async def test_subscription_time_check_does_not_cover_delivery_time() -> None:
    """The answer at subscription time was fine; at delivery it points at metadata."""
    dns = ScriptedDNS({"hooks.example.com": [[PUBLIC], ["169.254.169.254"]]})
    wire = Tripwire()
    sender = WebhookSender(
        allow_private=False, user_agent="test", resolver=dns, transport_factory=wire.transport
    )
    assert str(await sender.vet("https://hooks.example.com/x")) == PUBLIC
    with pytest.raises(RefusedURL, match="link-local"):
        await sender.post("https://hooks.example.com/x", b"{}")
    assert wire.reached == []
    await sender.aclose()


async def test_redirect_is_not_followed() -> None:
    dns = ScriptedDNS({"hooks.example.com": [[PUBLIC]]})
    recorder = Recorder(
        httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})
    )  # a second request would find no response and fail the test
    sender = WebhookSender(
        allow_private=False, user_agent="test", resolver=dns, transport_factory=recorder.transport
    )
    response = await sender.post("https://hooks.example.com/hook", b"{}")
    assert response.status_code == 302
    assert len(recorder.requests) == 1
    await sender.aclose()


def test_allow_private_admits_loopback_and_http() -> None:
    target = parse_target("http://127.0.0.1:8080/hook", allow_private=True)
    assert (target.host, target.port, target.host_header) == ("127.0.0.1", 8080, "127.0.0.1:8080")
    assert parse_target("http://localhost./x", allow_private=True).host == "localhost"
    assert parse_target("https://[::1]:9/x", allow_private=True).host_header == "[::1]:9"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://Discord.com/api/webhooks/123/abc", "https://discord.com/api/webhooks/123/abc"),
        (
            "https://hooks.slack.com:443/services/T/B/X#frag",
            "https://hooks.slack.com/services/T/B/X",
        ),
        ("  https://example.org/hook?a=1  ", "https://example.org/hook?a=1"),
        ("https://bücher.de/hook", "https://xn--bcher-kva.de/hook"),
        ("https://example.org./hook", "https://example.org/hook"),
        ("https://8.8.8.8:8443/x", "https://8.8.8.8:8443/x"),
        ("https://[2606:4700:4700::1111]/x", "https://[2606:4700:4700::1111]/x"),
    ],
)
def test_public_urls_are_accepted_in_canonical_form(url: str, canonical: str) -> None:
    assert parse_target(url, allow_private=False).url == canonical


async def test_unresolvable_name_is_reported() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[IPAddress]:
        raise OSError("Name or service not known")

    target = parse_target("https://nowhere.example.com/", allow_private=False)
    with pytest.raises(OSError, match="cannot resolve"):
        await vet_addresses(target, nxdomain, allow_private=False)


@given(st.ip_addresses())
def test_every_forbidden_address_is_refused_in_every_literal_spelling(ip: IPAddress) -> None:
    """Property: whatever the address, the literal URL is refused iff the address is,
    and IPv4 addresses give the same verdict as decimal, hex and their mapped form."""
    reason = forbidden_reason(ip)
    spellings = [f"https://[{ip}]/" if ip.version == 6 else f"https://{ip}/"]
    if ip.version == 4:
        spellings += [f"https://{int(ip)}/", f"https://{hex(int(ip))}/", f"https://[::ffff:{ip}]/"]
    for url in spellings:
        if reason is None:
            assert parse_target(url, allow_private=False).ip is not None
        else:
            with pytest.raises(RefusedURL):
                parse_target(url, allow_private=False)


def test_forbidden_reason_names_the_class() -> None:
    assert forbidden_reason(ipaddress.ip_address("169.254.169.254")) == "a link-local address"
    assert forbidden_reason(ipaddress.ip_address("::ffff:127.0.0.1")) == "a loopback address"
    assert forbidden_reason(ipaddress.ip_address("8.8.8.8")) is None
    assert forbidden_reason(ipaddress.ip_address("2606:4700:4700::1111")) is None
