"""The channel interface (SPEC §11): what only one medium knows.

A channel is one module (``app/channels/<name>.py``) with one :class:`Channel`
subclass, registered in :mod:`app.channels.registry`. It knows its medium:

- **subscribing** (the API and the subscription domain): :meth:`Channel.check_address`
  turns what a subscriber gave into the address to store, or refuses it with a clear
  :class:`InvalidAddress`; :meth:`Channel.confirmation` says how a subscription of this
  medium is confirmed;
- **delivering** (the worker's outbox pipeline): :meth:`Channel.prepare` renders what
  every recipient of one event shares (once per event), :meth:`Channel.render` one
  row's message (``None`` when its recipient no longer wants it), :meth:`Channel.send`
  sends it and classifies the answer as a :class:`Result`: delivered, retry (after N s),
  paused (nothing sent, no attempt counted), gone (the subscription ends) or failed.

Per-medium state lives in the channel: a mail server that is down (:class:`Outage`),
a webhook host's 429 wait. The pipeline (claim, lease, render, send, record, retry
policy, metrics) names no channel: it reads ``channel.name`` off each row and calls
these methods. Nothing here imports a web framework or the worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from app.backoff import Outage
from app.notifications.payloads import Payload

PreparedT = TypeVar("PreparedT")
MessageT = TypeVar("MessageT")


class InvalidAddress(ValueError):
    """What a subscriber gave is not an address of this medium (→ 422, nothing stored);
    the message says why, for a person to read."""


@dataclass(frozen=True, slots=True)
class Address:
    """A checked address: ``recipient`` is what links' tokens bind to and per-recipient
    caps count by (the email address, the webhook URL, the push endpoint, the chat);
    ``columns`` what the subscription row stores for it."""

    recipient: str
    columns: Mapping[str, Any]


class ConfirmBy(StrEnum):
    # A message with a confirm link goes to the address through the outbox
    # (notification type `confirmation`): the address proves it is reachable and willing.
    message = "message"
    # Active at once: giving the address is the consent (a browser's push subscription).
    none = "none"
    # The subscriber opens a link that binds the address (Telegram's /start <token>).
    deep_link = "deep_link"


@dataclass(frozen=True, slots=True)
class Confirmation:
    by: ConfirmBy
    required: bool = True  # False: active at once (e.g. REQUIRE_EMAIL_CONFIRMATION=false)


class Verdict(StrEnum):
    delivered = "delivered"  # status 'sent'
    retry = "retry"  # counts an attempt; again after `retry_after` or the backoff schedule
    paused = "paused"  # nothing was sent: no attempt counted; again after `retry_after`
    gone = "gone"  # the address no longer exists: the subscription ends, the row fails
    failed = "failed"  # never for this row
    skipped = "skipped"  # the recipient no longer wants it: not sent, never will be


@dataclass(frozen=True, slots=True)
class Result:
    """A channel's verdict on one send."""

    verdict: Verdict
    error: str | None = None
    # retry: the wait the receiver asked for (None: the backoff schedule decides);
    # paused: how long the row waits, uncounted.
    retry_after: float | None = None


DELIVERED = Result(Verdict.delivered)


@dataclass(frozen=True, slots=True)
class Event:
    """What every recipient of one event shares, as the pipeline loaded it."""

    id: int
    kind: str  # the notification type: live_match, confirmation, digest, ...
    key: str  # the event's own id: a session's first game, a request's random id
    payload: Payload
    occurred_at: datetime
    player_username: str | None = None
    player_name: str | None = None
    player_platform: str | None = None  # chesscom / lichess: whose profile a message links


@dataclass(slots=True)
class Delivery:
    """One outbox row: one event for one subscription, as the claim found them."""

    row_id: int
    subscription_id: int
    kind: str  # the row's notification type
    attempts: int  # counting the one in progress
    is_active: bool
    confirmed: bool
    # The subscription's columns the channel named in `Channel.columns`.
    target: Mapping[str, Any] = field(default_factory=dict)

    @property
    def wanted(self) -> bool:
        """An alert goes only to an active, confirmed subscription."""
        return self.is_active and self.confirmed


class Channel(ABC, Generic[PreparedT, MessageT]):
    """One medium. Subclasses set ``name`` (the subscriptions' ``channel`` value) and
    ``columns`` (the subscription columns their rows need, handed over in
    :attr:`Delivery.target`), and implement the abstract methods. A method that raises
    while preparing or rendering fails the row (it never will render); :meth:`send`
    turns every failure of the medium into a :class:`Result` and does not raise."""

    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        # The medium's server as a whole (a channel with one server, like SMTP, reports
        # it here; one with many hosts keeps a state per host, see the webhook channel).
        self.outage = Outage()

    # -- subscribing ----------------------------------------------------------------

    @abstractmethod
    async def check_address(self, given: Mapping[str, Any]) -> Address:
        """The address to store for what a subscriber gave (this medium's part of the
        request); raises :class:`InvalidAddress` before anything is stored."""

    @abstractmethod
    def confirmation(self) -> Confirmation:
        """How a new subscription of this medium becomes active."""

    # -- delivering -----------------------------------------------------------------

    @abstractmethod
    def prepare(self, event: Event) -> PreparedT:
        """What every recipient of ``event`` shares, rendered once (cached per event)."""

    @abstractmethod
    def render(self, prepared: PreparedT, delivery: Delivery) -> MessageT | None:
        """One row's message; None when its recipient no longer wants it (skipped)."""

    @abstractmethod
    async def send(self, message: MessageT, delivery: Delivery) -> Result:
        """Send one message and classify the answer (never raises for the medium's
        faults). A server down as a whole is reported with :meth:`Outage.failed` and a
        ``paused`` result; the next success calls :meth:`Outage.recovered`."""

    def metric_type(self, kind: str) -> str:
        """The ``type`` label of this channel's deliveries of ``kind`` in the metrics."""
        return f"{self.name}_{kind}"

    async def aclose(self) -> None:
        """Release what the channel holds (connections)."""
