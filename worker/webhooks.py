"""Delivering one outbox row to a webhook (SPEC §7, §9).

Rendered at send time from the row like an email, so every attempt posts the same
body with the same ``webhook-id`` (``msg_<row id>``): a receiver that saw an attempt
whose answer was lost (a worker killed mid-send) can drop the repeat. The verdict on
the answer (:mod:`app.webhooks.outcome`) tells the outbox what to do next; a 429 also
holds the whole host, so its other rows wait instead of hammering it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.config import Settings
from app.models import NotificationType
from app.notifications.payloads import GameRecord
from app.subscriptions.tokens import Purpose, TokenSigner
from app.urls import WEBHOOK_MANAGE_PATH, link_url, manage_url
from app.webhooks.client import HostOnHold, WebhookSender, WebhookSendError
from app.webhooks.guard import RefusedURL
from app.webhooks.outcome import Outcome, Verdict, classify
from app.webhooks.payloads import (
    LiveMatchMessage,
    ManageLinkMessage,
    Message,
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

    @property
    def message_id(self) -> str:
        return f"msg_{self.row_id}"


class WebhookDelivery:
    def __init__(self, settings: Settings, signer: TokenSigner, sender: WebhookSender) -> None:
        self.settings = settings
        self.signer = signer
        self.sender = sender

    def _link(self, purpose: Purpose, job: WebhookJob) -> str:
        token = self.signer.sign(purpose, job.subscription_id, job.url)
        return link_url(self.settings.public_url, purpose, token)

    def _manage_link(self, job: WebhookJob) -> str:
        """The webhook's manage link (app.webhooks.manage), signed afresh per message."""
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
            # Deliverer.webhook_job: see there); each call maps its own types.
            return LiveMatchMessage(
                username=job.username,
                player_name=job.player_name,
                games=job.games,
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
            )
        if job.notification_type == NotificationType.manage_link:
            if not (job.is_active and job.confirmed):
                return None
            return ManageLinkMessage(
                username=job.username,
                unsubscribe_url=unsubscribe,
                occurred_at=job.occurred_at,
                manage_url=manage,
            )
        raise ValueError(f"no webhook message for {job.notification_type!r}")

    def request(self, job: WebhookJob, message: Message) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt (only the timestamp and signature vary)."""
        body = render_body(WebhookFormat(job.format), message)
        headers = {"webhook-id": job.message_id}
        if job.format == WebhookFormat.json:
            if not job.secret:
                raise ValueError("a json webhook without its secret")
            headers = signed_headers(job.secret, job.message_id, int(time.time()), body)
        return body, headers

    async def send(self, job: WebhookJob, message: Message) -> Outcome:
        """Post one attempt and judge the answer. Never raises for the receiver's faults."""
        body, headers = self.request(job, message)
        try:
            response = await self.sender.post(job.url, body, headers)
        except HostOnHold as exc:
            return Outcome(Verdict.postponed, str(exc), exc.seconds)
        except RefusedURL as exc:
            return Outcome(Verdict.failed, f"refused: {exc}")
        except WebhookSendError as exc:
            return Outcome(Verdict.retry, str(exc)[:1000] or type(exc).__name__)
        outcome = classify(response)
        if outcome.verdict is Verdict.retry and outcome.retry_after is not None:
            self.sender.hold(self.sender.check(job.url).host, outcome.retry_after)
        return outcome
