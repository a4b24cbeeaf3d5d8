"""Delivering the outbox (SPEC §7): claim with SKIP LOCKED, render, send, mark.

A claim takes a lease (`locked_until`) and counts the attempt in one statement, so a
worker killed mid-send leaves a row that another worker takes once the lease ends:
nothing is lost, and only a message in flight at the kill can be sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.emails.digest import DigestSession, render_digest
from app.emails.render import (
    GameSummary,
    render_confirmation,
    render_erase_confirmation,
    render_live_match,
    render_manage_link,
)
from app.models import Channel, NotificationType
from app.notifications.payloads import Digest, GameRecord, LiveSession, load_payload
from app.subscriptions.tokens import Purpose, TokenSigner
from app.urls import link_url, manage_url, unsubscribe_all_url
from app.webhooks.client import WebhookSender
from app.webhooks.outcome import Verdict
from worker import metrics
from worker.mailer import Mailer, MailError, MailServerUnavailable
from worker.webhooks import WebhookDelivery, WebhookJob

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    subscription_id: int
    event_id: int
    event_key: str
    notification_type: str
    attempts: int
    payload: dict[str, Any]
    email: str | None
    is_active: bool
    confirmed: bool
    username: str
    player_name: str | None
    locked_until: datetime  # the lease as claimed: proof the row is still ours
    channel: str = Channel.email
    webhook_url: str | None = None
    webhook_format: str | None = None
    webhook_secret: str | None = None
    occurred_at: datetime | None = None
    claimed_at: float = field(default_factory=time.monotonic)


_CLAIM = text(
    """
WITH due AS (
    SELECT n.id FROM notification_logs n
    WHERE n.status = 'pending' AND n.next_attempt_at <= now()
      AND (n.locked_until IS NULL OR n.locked_until < now())
    ORDER BY n.next_attempt_at, n.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_logs n
SET locked_until = now() + make_interval(secs => :lease), attempts = n.attempts + 1
FROM due, email_subscriptions s, players p, events e
WHERE n.id = due.id AND s.id = n.subscription_id AND p.player_id = s.player_id
  AND e.id = n.event_id
RETURNING n.id, n.subscription_id, n.event_id, e.key AS event_key, n.notification_type,
          n.attempts, e.payload,
          s.email, s.is_active, s.confirmed_at IS NOT NULL AS confirmed,
          p.username, p.name AS player_name, n.locked_until,
          s.channel, s.webhook_url, s.webhook_format, s.webhook_secret, e.occurred_at
"""
)

# A batch waits for free sending slots after its claim. A row that waited past half its
# lease is taken afresh before its send, but only if it is still ours: one whose lease
# ran out may have been claimed by another worker (new locked_until), which sends it.
_RENEW = text(
    """
UPDATE notification_logs SET locked_until = now() + make_interval(secs => :lease)
WHERE id = :id AND status = 'pending' AND locked_until = :claimed_until
RETURNING locked_until
"""
)

_MARK_SENT = text(
    """
UPDATE notification_logs
SET status = 'sent', success = true, sent_at = now(), locked_until = NULL, error_message = NULL
WHERE id = :id AND status = 'pending'
"""
)

_MARK_FAILED = text(
    """
UPDATE notification_logs
SET status = CASE WHEN :final THEN 'failed' ELSE 'pending' END,
    success = false, locked_until = NULL, error_message = :error,
    next_attempt_at = now() + make_interval(secs => :delay)
WHERE id = :id AND status = 'pending'
"""
)

# A webhook answered 404/410: it no longer exists, so its subscription ends.
_DEACTIVATE = text(
    """
UPDATE email_subscriptions SET is_active = false, unsubscribed_at = now(), updated_at = now()
WHERE id = :subscription_id AND is_active
"""
)

_RELEASE = text(
    """
UPDATE notification_logs SET locked_until = NULL, attempts = greatest(attempts - 1, 0)
WHERE id = ANY(:ids) AND status = 'pending'
"""
)

# The mail server is down: the row waits for it without losing an attempt (the claim
# counted one), so an SMTP outage of any length never fails a row.
_POSTPONE = text(
    """
UPDATE notification_logs
SET locked_until = NULL, attempts = greatest(attempts - 1, 0), error_message = :error,
    next_attempt_at = now() + make_interval(secs => :delay)
WHERE id = :id AND status = 'pending'
"""
)

_NEXT_WORK = text(
    """
SELECT extract(epoch FROM min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)))
       - now())
FROM notification_logs WHERE status = 'pending'
"""
)


def game_summary(game: GameRecord, username: str) -> GameSummary:
    white = game.white.lower() == username.lower()
    return GameSummary(
        url=game.url,
        time_class=game.time_class,
        time_control=game.time_control,
        opponent=game.black if white else game.white,
        opponent_rating=game.black_rating if white else game.white_rating,
        result=(game.white_result if white else game.black_result) or None,
        end_time=datetime.fromtimestamp(game.end_time, UTC),
    )


def retry_delay(attempts: int, *, base: float = 2.0, cap: float = 3600.0) -> float:
    """Backoff after the n-th failed attempt: 2 s, 6 s, 18 s, 54 s, ... capped, jittered
    over the upper half so many failed rows do not retry in lockstep."""
    delay = min(cap, base * 3.0 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        mailer: Mailer,
        signer: TokenSigner,
        session_factory: async_sessionmaker[AsyncSession],
        webhook_sender: WebhookSender | None = None,
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        self.signer = signer
        self.session_factory = session_factory
        self._parallel = asyncio.Semaphore(settings.delivery_concurrency)
        # Set when a send found the mail server unreachable, cleared by the next
        # success; the runner then pauses delivery and probes with one row at a time.
        self.server_unavailable: MailServerUnavailable | None = None
        self.postpone_seconds = 1.0
        self.webhooks = WebhookDelivery(
            settings, signer, webhook_sender or WebhookSender.from_settings(settings)
        )

    async def aclose(self) -> None:
        await self.webhooks.sender.aclose()

    async def claim(self, limit: int) -> list[ClaimedRow]:
        async with self.session_factory() as session, session.begin():
            rows = await session.execute(
                _CLAIM, {"limit": limit, "lease": self.settings.delivery_lease_seconds}
            )
            return [ClaimedRow(**r._asdict()) for r in rows]

    async def release(self, ids: list[int]) -> None:
        if ids:
            async with self.session_factory() as session, session.begin():
                await session.execute(_RELEASE, {"ids": ids})

    async def seconds_until_next(self) -> float | None:
        async with self.session_factory() as session:
            value = await session.scalar(_NEXT_WORK)
        return None if value is None else max(0.0, float(value))

    def render(self, row: ClaimedRow) -> EmailMessage | None:
        """The message for a row, or None when it must not be sent any more."""
        s = self.settings
        if row.email is None:
            raise ValueError("an email notification for a subscription without an address")
        email = row.email
        unsubscribe = link_url(
            s.public_url,
            Purpose.unsubscribe,
            self.signer.sign(Purpose.unsubscribe, row.subscription_id, email),
        )
        if row.notification_type == NotificationType.live_match:
            if not (row.is_active and row.confirmed):
                return None
            live = load_payload(row.notification_type, row.payload)
            assert isinstance(live, LiveSession)
            games = [game_summary(g, row.username) for g in live.games]
            return render_live_match(
                to=email,
                sender=s.email_from,
                player_username=row.username,
                player_name=row.player_name,
                games=games,
                event_id=row.event_key,
                row_id=row.id,
                unsubscribe_url=unsubscribe,
                public_base_url=s.public_url,
            )
        if row.notification_type == NotificationType.confirmation:
            if row.confirmed and row.is_active:
                return None
            confirm = link_url(
                s.public_url,
                Purpose.confirm,
                self.signer.sign(Purpose.confirm, row.subscription_id, email),
            )
            return render_confirmation(
                to=email,
                sender=s.email_from,
                player_username=row.username,
                confirm_url=confirm,
                row_id=row.id,
                event_id=row.event_key,
            )
        if row.notification_type == NotificationType.erase_request:
            erase = link_url(
                s.public_url,
                Purpose.erase,
                self.signer.sign(Purpose.erase, row.subscription_id, email),
            )
            return render_erase_confirmation(
                to=email,
                sender=s.email_from,
                erase_url=erase,
                row_id=row.id,
                event_id=row.event_key,
            )
        if row.notification_type == NotificationType.manage_link:
            manage = manage_url(
                s.public_url, self.signer.sign(Purpose.manage, row.subscription_id, row.email)
            )
            return render_manage_link(
                to=row.email,
                sender=s.email_from,
                manage_url=manage,
                valid_days=max(1, s.manage_token_max_age_seconds // 86400),
                row_id=row.id,
                event_id=row.event_key,
            )
        if row.notification_type == NotificationType.digest:
            if not (row.is_active and row.confirmed):
                return None
            digest = load_payload(row.notification_type, row.payload)
            assert isinstance(digest, Digest)
            manage = manage_url(
                s.public_url, self.signer.sign(Purpose.manage, row.subscription_id, row.email)
            )
            return render_digest(
                to=row.email,
                sender=s.email_from,
                local_date=digest.local_date,
                timezone=digest.timezone,
                sessions=[
                    DigestSession(
                        username=live.username,
                        name=live.name,
                        started_at=datetime.fromtimestamp(live.started_at, UTC),
                        games=[game_summary(g, live.username) for g in live.games],
                    )
                    for live in digest.sessions
                ],
                manage_url=manage,
                unsubscribe_all_url=unsubscribe_all_url(manage),
                public_base_url=s.public_url,
                row_id=row.id,
                event_id=row.event_key,
            )
        raise ValueError(f"unknown notification type {row.notification_type!r}")

    async def deliver(self, row: ClaimedRow) -> bool:
        """Send one claimed row and record the result. True when sent."""
        async with self._parallel:
            # In the first half of its lease the row is surely ours and the send has at
            # least half a lease; after that, ask the database (one more round trip).
            waited = time.monotonic() - row.claimed_at
            if waited > self.settings.delivery_lease_seconds / 2 and not await self._renew(row):
                log.info("notification %s: lease lost while waiting; another worker has it", row.id)
                return False
            if row.channel == Channel.webhook:
                return await self._deliver_webhook(row)
            try:
                message = self.render(row)
            except Exception as exc:  # a row we cannot render will never render: fail it
                log.exception("cannot render notification %s", row.id)
                await self._mark_failed(row, f"render error: {type(exc).__name__}", final=True)
                return False
            if message is None:
                await self._mark_failed(row, "skipped: subscription no longer active", final=True)
                metrics.EMAILS.labels(row.notification_type, "skipped").inc()
                return False
            try:
                await self.mailer.send(message)
            except MailServerUnavailable as exc:
                self.server_unavailable = exc
                await self._postpone(row, str(exc)[:1000])
                metrics.EMAILS.labels(row.notification_type, "postponed").inc()
                return False
            except MailError as exc:
                final = not exc.retryable or row.attempts >= self.settings.delivery_max_attempts
                await self._mark_failed(row, str(exc)[:1000] or type(exc).__name__, final=final)
                metrics.EMAILS.labels(row.notification_type, "failed" if final else "retry").inc()
                log.warning(
                    "delivery of notification %s failed (attempt %d%s): %s",
                    row.id,
                    row.attempts,
                    ", giving up" if final else "",
                    exc,
                )
                return False
            self.server_unavailable = None
            # Shielded: once the message left, recording it must not be cancelled halfway.
            await asyncio.shield(self._mark_sent(row))
            metrics.EMAILS.labels(row.notification_type, "sent").inc()
            return True

    def webhook_job(self, row: ClaimedRow) -> WebhookJob:
        games: list[GameSummary] = []
        if row.notification_type == NotificationType.live_match:
            live = load_payload(row.notification_type, row.payload)
            assert isinstance(live, LiveSession)
            games = [game_summary(g, row.username) for g in live.games]
        return WebhookJob(
            row_id=row.id,
            subscription_id=row.subscription_id,
            notification_type=row.notification_type,
            is_active=row.is_active,
            confirmed=row.confirmed,
            url=row.webhook_url or "",
            format=row.webhook_format or "",
            secret=row.webhook_secret,
            username=row.username,
            player_name=row.player_name,
            games=games,
            event_key=row.event_key,
            occurred_at=row.occurred_at or datetime.now(UTC),
        )

    async def _deliver_webhook(self, row: ClaimedRow) -> bool:
        """One attempt at a webhook row, recorded like an email's (SPEC §9)."""
        kind = f"webhook_{row.notification_type}"
        try:
            job = self.webhook_job(row)
            message = self.webhooks.message(job)
        except Exception as exc:  # a row we cannot render will never render: fail it
            log.exception("cannot render notification %s", row.id)
            await self._mark_failed(row, f"render error: {type(exc).__name__}", final=True)
            return False
        if message is None:
            await self._mark_failed(row, "skipped: subscription no longer active", final=True)
            metrics.EMAILS.labels(kind, "skipped").inc()
            return False
        outcome = await self.webhooks.send(job, message)
        if outcome.verdict is Verdict.delivered:
            await asyncio.shield(self._mark_sent(row))
            metrics.EMAILS.labels(kind, "sent").inc()
            return True
        if outcome.verdict is Verdict.postponed:
            await self._postpone(row, outcome.error or "host on hold", outcome.retry_after)
            return False
        error = (outcome.error or outcome.verdict.value)[:1000]
        final = (
            outcome.verdict is not Verdict.retry
            or row.attempts >= self.settings.delivery_max_attempts
        )
        if outcome.verdict is Verdict.gone:
            await self._mark_gone(row, error)
        else:
            await self._mark_failed(row, error, final=final, delay=outcome.retry_after)
        metrics.EMAILS.labels(kind, "failed" if final else "retry").inc()
        log.warning(
            "webhook notification %s failed (attempt %d%s): %s",
            row.id,
            row.attempts,
            ", giving up" if final else "",
            error,
        )
        return False

    async def _mark_gone(self, row: ClaimedRow, error: str) -> None:
        """The row fails and the subscription ends, together."""
        async with self.session_factory() as session, session.begin():
            await session.execute(
                _MARK_FAILED,
                {"id": row.id, "final": True, "error": f"gone: {error}", "delay": 0.0},
            )
            await session.execute(_DEACTIVATE, {"subscription_id": row.subscription_id})

    async def _renew(self, row: ClaimedRow) -> bool:
        async with self.session_factory() as session, session.begin():
            renewed = await session.scalar(
                _RENEW,
                {
                    "id": row.id,
                    "lease": self.settings.delivery_lease_seconds,
                    "claimed_until": row.locked_until,
                },
            )
        return renewed is not None

    async def _mark_sent(self, row: ClaimedRow) -> None:
        async with self.session_factory() as session, session.begin():
            await session.execute(_MARK_SENT, {"id": row.id})

    async def _postpone(self, row: ClaimedRow, error: str, delay: float | None = None) -> None:
        """Not sent at all (mail server down, a webhook host's 429 wait): no attempt
        is counted; tried again after `delay` seconds."""
        async with self.session_factory() as session, session.begin():
            await session.execute(
                _POSTPONE,
                {
                    "id": row.id,
                    "error": error[:1000],
                    "delay": self.postpone_seconds if delay is None else delay,
                },
            )

    async def _mark_failed(
        self, row: ClaimedRow, error: str, *, final: bool, delay: float | None = None
    ) -> None:
        """`delay`: the receiver's own wait (a 429), else the backoff."""
        if final:
            delay = 0.0
        elif delay is None:
            delay = retry_delay(row.attempts, base=self.settings.delivery_retry_base_seconds)
        async with self.session_factory() as session, session.begin():
            await session.execute(
                _MARK_FAILED, {"id": row.id, "final": final, "error": error, "delay": delay}
            )
