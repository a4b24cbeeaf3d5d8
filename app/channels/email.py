"""The email channel (SPEC §7): multipart text + HTML over SMTP (or .eml files).

An event's message is rendered once (:func:`app.emails.messages.prepare`: templates,
MIME structure, headers); per recipient only what differs is filled into its bytes
(To, Date, Message-ID, List-Unsubscribe and the signed links). The mail server being
unreachable is this channel's state (:attr:`Channel.outage`): its rows then wait,
uncounted, while one row at a time probes it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.backoff import Outage
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
from app.emails.mailer import Mailer, MailError, MailServerUnavailable, build_mailer
from app.emails.messages import EventFacts, Recipient, Site, prepare, recipient_links, spec_for
from app.emails.render import PreparedMessage, Rendered
from app.schemas import canonical_email
from app.tokens import TokenSigner

log = logging.getLogger(__name__)

# The mail server unreachable: its rows wait this long before the next probe, doubling
# up to the maximum (no attempt is counted while it is down).
PAUSE_FIRST_SECONDS = 1.0
PAUSE_MAX_SECONDS = 5.0


class EmailChannel(Channel[PreparedMessage, Rendered]):
    name = "email"
    columns = ("email",)

    def __init__(
        self, settings: Settings, signer: TokenSigner, *, mailer: Mailer | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.signer = signer
        self.mailer = mailer or build_mailer(settings)
        self.site = Site(
            sender=settings.email_from,
            public_url=settings.public_url,
            manage_link_days=max(1, settings.manage_token_max_age_seconds // 86400),
        )
        self.outage = Outage(PAUSE_FIRST_SECONDS, PAUSE_MAX_SECONDS)

    async def aclose(self) -> None:
        await self.mailer.aclose()

    def metric_type(self, kind: str) -> str:
        return kind  # emails were first: their labels carry no prefix (dashboards)

    # -- subscribing ----------------------------------------------------------------

    async def check_address(self, given: Mapping[str, Any]) -> Address:
        raw = given.get("email")
        if not isinstance(raw, str):
            raise InvalidAddress("an email address is required")
        try:
            email = canonical_email(raw)
        except ValueError as exc:
            raise InvalidAddress(str(exc)) from exc
        return Address(email, {"email": email})

    def confirmation(self) -> Confirmation:
        return Confirmation(ConfirmBy.message, required=self.settings.require_email_confirmation)

    # -- delivering -----------------------------------------------------------------

    def prepare(self, event: Event) -> PreparedMessage:
        facts = EventFacts(
            kind=event.kind,
            key=event.key,
            payload=event.payload,
            player_username=event.player_username,
            player_name=event.player_name,
        )
        return prepare(facts, self.site)

    def render(self, prepared: PreparedMessage, delivery: Delivery) -> Rendered | None:
        email = delivery.target.get("email")
        if email is None:
            raise ValueError("an email notification for a subscription without an address")
        spec = spec_for(delivery.kind)
        recipient = Recipient(
            delivery.subscription_id, email, delivery.is_active, delivery.confirmed
        )
        if not spec.wanted(recipient):
            return None
        links = recipient_links(spec, self.signer, self.site.public_url, recipient)
        return prepared.render(to=email, row_id=delivery.row_id, links=links)

    async def send(self, message: Rendered, delivery: Delivery) -> Result:
        try:
            await self.mailer.send_raw(message)
        except MailServerUnavailable as exc:
            if not self.outage.down:
                log.warning("%s; emails wait (no attempt counted) and one probes it", exc)
            wait = self.outage.failed(str(exc))
            return Result(Verdict.paused, str(exc)[:1000], wait)
        except MailError as exc:
            verdict = Verdict.retry if exc.retryable else Verdict.failed
            return Result(verdict, str(exc)[:1000] or type(exc).__name__)
        if self.outage.down:
            down = self.outage.recovered()
            log.info("SMTP server reachable again after %.1fs", down or 0.0)
        return DELIVERED
