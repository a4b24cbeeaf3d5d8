"""The webhook channel (SPEC §9): Discord, Slack, ntfy and the signed JSON event.

Rendered per row from its event (webhook audiences are small, and each body is signed
for its own receiver), so every attempt of a row posts the same body under the same
``webhook-id`` (``msg_<row id>``): a receiver that saw an attempt whose answer was lost
can drop the repeat. The answer is classified by :func:`classify` (below);
a 429 holds the whole host (:class:`app.webhooks.client.WebhookSender` keeps each host's
wait), so its other rows wait uncounted instead of hammering it, and so does a host
that refuses connections (down as a whole).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.backoff import retry_span
from app.channels.base import (
    DELIVERED,
    Address,
    Channel,
    Confirmation,
    ConfirmBy,
    Delivery,
    Event,
    InvalidAddress,
    Result,
    Verdict,
)
from app.config import Settings
from app.errors import UpstreamUnavailable
from app.models import WEBHOOK_FORMATS, NotificationType
from app.notifications.payloads import GameRecord, LiveSession, StreamStarted
from app.player_keys import Platform
from app.retry_after import parse_retry_after
from app.tokens import Purpose, TokenSigner
from app.urls import WEBHOOK_MANAGE_PATH, link_url, manage_url
from app.webhooks import ntfy
from app.webhooks.client import (
    HostOnHold,
    HostRefused,
    WebhookResponse,
    WebhookSender,
    WebhookSendError,
)
from app.webhooks.guard import (
    LookupUnavailable,
    RefusedURL,
    Resolver,
    WebhookTarget,
    check_webhook_url,
    system_resolver,
)
from app.webhooks.payloads import (
    LiveMatchMessage,
    ManageLinkMessage,
    Message,
    StreamMessage,
    VerificationMessage,
    WebhookFormat,
    render_body,
)
from app.webhooks.signing import signed_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookJob:
    """What one outbox row of a webhook subscription needs to be sent."""

    row_id: int
    subscription_id: int
    notification_type: str
    is_active: bool
    confirmed: bool
    url: str
    format: str
    secret: str | None
    username: str
    player_name: str | None
    games: Sequence[GameRecord]
    event_key: str
    occurred_at: datetime
    platform: str = Platform.chesscom  # the player's platform
    stream: StreamStarted | None = None  # a stream_started row's stream

    @property
    def message_id(self) -> str:
        return f"msg_{self.row_id}"


@dataclass(frozen=True, slots=True)
class WebhookPost:
    """One row's rendered message, and what it is sent for."""

    job: WebhookJob
    message: Message


class WebhookChannel(Channel[Event, WebhookPost]):
    name = "webhook"
    columns = ("webhook_url", "webhook_format", "webhook_secret")

    def __init__(
        self,
        settings: Settings,
        signer: TokenSigner,
        *,
        sender: WebhookSender | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.signer = signer
        self.sender = sender or WebhookSender.from_settings(settings)
        self.resolver = resolver or system_resolver
        self.refusal_patience = refusal_patience(settings)

    async def aclose(self) -> None:
        await self.sender.aclose()

    # -- subscribing ----------------------------------------------------------------

    async def check_address(self, given: Mapping[str, Any]) -> Address:
        """The canonical URL, checked with its host's current addresses (SPEC §9)."""
        url, fmt = given.get("url"), given.get("format")
        if fmt not in WEBHOOK_FORMATS:
            raise InvalidAddress(f"webhook.format must be one of {', '.join(WEBHOOK_FORMATS)}")
        if not isinstance(url, str):
            raise InvalidAddress("webhook.url is required")
        target = await check_url(url, "webhook.url", self.settings, self.resolver)
        return Address(target.url, {"webhook_url": target.url, "webhook_format": fmt})

    def confirmation(self) -> Confirmation:
        # A verification post carrying the confirm link: proof the poster can read it.
        return Confirmation(ConfirmBy.message, required=self.settings.require_email_confirmation)

    # -- delivering -----------------------------------------------------------------

    def prepare(self, event: Event) -> Event:
        return event  # each body is rendered (and signed) for its own receiver

    def render(self, prepared: Event, delivery: Delivery) -> WebhookPost | None:
        job = self.job(prepared, delivery)
        message = self.message(job)
        return None if message is None else WebhookPost(job, message)

    def job(self, event: Event, delivery: Delivery) -> WebhookJob:
        """What a row needs, from its event and its subscription's columns."""
        payload = event.payload
        live = payload if isinstance(payload, LiveSession) else None
        stream = payload if isinstance(payload, StreamStarted) else None
        about = live or stream  # the payload naming the player, if any
        target = delivery.target
        # Field by field from the row and its event (alike in shape to
        # GameRecord.from_game and message() below: see there).
        return WebhookJob(
            row_id=delivery.row_id,
            subscription_id=delivery.subscription_id,
            notification_type=delivery.kind,
            is_active=delivery.is_active,
            confirmed=delivery.confirmed,
            url=target.get("webhook_url") or "",
            format=target.get("webhook_format") or "",
            secret=target.get("webhook_secret"),
            username=about.username if about else (event.player_username or ""),
            player_name=about.name if about else event.player_name,
            games=live.games if live and delivery.kind == NotificationType.live_match else (),
            event_key=event.key,
            occurred_at=event.occurred_at,
            platform=about.platform if about else (event.player_platform or Platform.chesscom),
            stream=stream if delivery.kind == NotificationType.stream_started else None,
        )  # fmt: skip

    def _link(self, purpose: Purpose, job: WebhookJob) -> str:
        token = self.signer.sign(purpose, job.subscription_id, job.url)
        return link_url(self.settings.public_url, purpose, token)

    def _manage_link(self, job: WebhookJob) -> str:
        """The webhook's manage link (app.subscriptions.webhook_manage), freshly signed."""
        token = self.signer.sign(Purpose.webhook_manage, job.subscription_id, job.url)
        return manage_url(self.settings.public_url, token, path=WEBHOOK_MANAGE_PATH)

    def message(self, job: WebhookJob) -> Message | None:
        """The message for a row, or None when it must not be sent any more."""
        unsubscribe = self._link(Purpose.unsubscribe, job)
        manage = self._manage_link(job)
        if job.notification_type == NotificationType.live_match:
            if not (job.is_active and job.confirmed):
                return None
            # The job's fields by keyword (alike in shape to GameRecord.from_game and
            # job() above: see there); each call maps its own types.
            return LiveMatchMessage(
                username=job.username,
                player_name=job.player_name,
                games=job.games,
                event_id=job.event_key,
                occurred_at=job.occurred_at,
                unsubscribe_url=unsubscribe,
                manage_url=manage,
                platform=job.platform,
            )
        if job.notification_type == NotificationType.stream_started:
            if not (job.is_active and job.confirmed):
                return None
            if job.stream is None:
                raise ValueError("a stream_started row whose event is not a stream")
            return StreamMessage(
                username=job.username,
                player_name=job.player_name,
                platform=job.platform,
                stream_type=job.stream.stream_type,
                stream_url=job.stream.stream_url,
                event_id=job.event_key,
                occurred_at=job.occurred_at,
                unsubscribe_url=unsubscribe,
                manage_url=manage,
            )
        if job.notification_type == NotificationType.confirmation:
            if job.confirmed and job.is_active:
                return None
            return VerificationMessage(
                username=job.username,
                confirm_url=self._link(Purpose.confirm, job),
                unsubscribe_url=unsubscribe,
                occurred_at=job.occurred_at,
                manage_url=manage,
                platform=job.platform,
            )
        if job.notification_type == NotificationType.manage_link:
            if not (job.is_active and job.confirmed):
                return None
            return ManageLinkMessage(
                username=job.username,
                unsubscribe_url=unsubscribe,
                occurred_at=job.occurred_at,
                manage_url=manage,
                platform=job.platform,
            )
        raise ValueError(f"no webhook message for {job.notification_type!r}")

    def request(self, job: WebhookJob, message: Message) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt (only the timestamp and signature vary)."""
        if job.format == ntfy.FORMAT:  # a text body, what phones show in headers
            body, ntfy_headers = ntfy.render(message)
            return body, {**ntfy_headers, "webhook-id": job.message_id}
        body = render_body(WebhookFormat(job.format), message)
        headers = {"webhook-id": job.message_id}
        if job.format == WebhookFormat.json:
            if not job.secret:
                raise ValueError("a json webhook without its secret")
            headers = signed_headers(job.secret, job.message_id, int(time.time()), body)
        return body, headers

    async def send(self, message: WebhookPost, delivery: Delivery) -> Result:
        """Post one attempt and judge the answer. Never raises for the receiver's faults."""
        job = message.job
        body, headers = self.request(job, message.message)
        return await post_and_judge(
            self.sender, job.url, body, headers, refusal_patience=self.refusal_patience
        )


def refusal_patience(settings: Settings) -> float:
    """How long a host may refuse connections before its refusals spend attempts: a
    row's whole retry schedule (past it, the host may be gone for good and its rows end)."""
    return retry_span(settings.delivery_max_attempts, first=settings.delivery_retry_base_seconds)


async def check_url(
    raw: str, field: str, settings: Settings, resolver: Resolver
) -> WebhookTarget:
    """A subscriber's URL (a webhook's, a push endpoint's) under SPEC §9's rules, its host
    resolved now: a refused URL is the subscriber's to fix (422), a resolver that cannot
    answer now is not (503, try again)."""
    try:
        return await check_webhook_url(
            raw,
            allow_private=settings.webhook_allow_private,
            resolver=resolver,
            within=settings.webhook_timeout_seconds,
        )
    except RefusedURL as exc:
        raise InvalidAddress(f"{field} refused: {exc}") from exc
    except LookupUnavailable as exc:
        raise UpstreamUnavailable(f"{field}: {exc}; please try again") from exc


async def post_and_judge(
    sender: WebhookSender,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    refusal_patience: float,
) -> Result:
    """One attempt through the pinned sender (SPEC §9), judged: the send of every channel
    that posts to a URL it was given (webhooks, Web Push endpoints). Never raises for the
    receiver's faults.

    A 429 or a refused connection holds the whole host, so its other rows wait uncounted
    (paused) instead of hammering it; a host refusing longer than `refusal_patience`
    spends attempts again. A URL the rules refuse now fails at once."""
    try:
        response = await sender.post(url, body, headers)
    except HostOnHold as exc:
        return Result(Verdict.paused, str(exc), exc.seconds)
    except HostRefused as exc:
        return _refused(sender, exc, refusal_patience)
    except RefusedURL as exc:
        return Result(Verdict.failed, f"refused: {exc}")
    except WebhookSendError as exc:
        return Result(Verdict.retry, str(exc)[:1000] or type(exc).__name__)
    result = classify(response)
    if result.verdict is Verdict.retry and result.retry_after is not None:
        sender.hold(sender.check(url).origin, result.retry_after)
    return result


def _refused(sender: WebhookSender, exc: HostRefused, patience: float) -> Result:
    """A host down as a whole: its rows wait, uncounted, while one probes it."""
    outage = sender.outage(exc.host)
    if outage.down_for() > patience:
        return Result(Verdict.retry, str(exc)[:1000])
    if not outage.down:
        log.warning("%s; its messages wait (no attempt counted) and one probes it", exc)
    wait = outage.failed(str(exc))
    sender.hold(exc.host, wait)
    return Result(Verdict.paused, f"{exc}"[:1000], wait)


# -- what an answer means (SPEC §9), pure -------------------------------------------------
#
# 2xx delivered; 429 retried after the wait the receiver asked for (``Retry-After`` in
# seconds or as an HTTP date, or Discord's ``retry_after`` in the JSON body); 404 and
# 410 mean the webhook is gone, so the subscription ends; 408 and 5xx are retried with
# backoff; any other answer (a redirect, 400, 401, 403...) will not get better by
# retrying and fails the row at once.

MAX_RETRY_AFTER = 3600.0  # a longer wait than this is answered by the normal backoff
DEFAULT_RETRY_AFTER = 5.0  # a 429 that says nothing


def _body_delay(body: bytes) -> float | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("retry_after") if isinstance(data, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def retry_after(response: WebhookResponse, now: datetime | None = None) -> float:
    """Seconds a 429 asks us to wait: the larger of header and body, capped."""
    now = now or datetime.now(UTC)
    candidates = [
        d
        for d in (
            parse_retry_after(response.headers.get("retry-after"), now=now),
            _body_delay(response.body),
        )
        if d is not None
    ]
    delay = max(candidates) if candidates else DEFAULT_RETRY_AFTER
    return min(delay, MAX_RETRY_AFTER)


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    return " ".join(text.split())


def classify(response: WebhookResponse, now: datetime | None = None) -> Result:
    """The verdict on one answer."""
    status = response.status_code
    described = f"HTTP {status}" + (f": {_snippet(response.body)}" if response.body else "")
    if 200 <= status < 300:
        return DELIVERED
    if status == 429:
        return Result(Verdict.retry, described, retry_after(response, now))
    if status in (404, 410):
        return Result(Verdict.gone, described)
    if status == 408 or status >= 500:
        return Result(Verdict.retry, described)
    if 300 <= status < 400:
        return Result(Verdict.failed, f"HTTP {status}: redirects are not followed")
    return Result(Verdict.failed, described)
