"""Who a subscription delivers to: what subscribing needs to know per channel.

Subscribe, confirm, caps, filters, events, pause, unsubscribe and erase are written once,
for every channel, in app.subscriptions.service. What only a medium knows comes from its
channel module (app.channels, one per medium): `check_address` turns what a subscriber
gave into the canonical address and the columns to store (or refuses it, 422), and
`confirmation()` says how an opt-in is confirmed. What the subscription rows need
besides is said here, as data, one `ChannelRules` entry per channel:

* which column holds the address ((address, player) is the unique key subscribing
  upserts on) and the namespace of the recipient's advisory lock;
* the columns only that medium stores, written with a new row or a fresh opt-in, and
  fresh values for them (a `json` webhook's signing secret, shown once);
* which one-recipient requests share the daily cap (an address's mails are capped per
  kind; everything posted to a webhook URL on request shares one cap);
* what an active subscriber asking again gets (a webhook: its manage link, having no
  other way back to its controls; an address asks for one at `/me/link`).

Adding a channel (push, Telegram): its module and registry line in app.channels, its
address column, and one `ChannelRules` entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from app.channels.base import Channel as DeliveryChannel
from app.channels.base import Confirmation, ConfirmBy, InvalidAddress
from app.errors import Unprocessable
from app.models import Channel, EmailSubscription, NotificationType
from app.webhooks.guard import RefusedURL, parse_target
from app.webhooks.signing import new_secret


def _no_fresh_columns(columns: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _webhook_secret(columns: Mapping[str, Any]) -> dict[str, Any]:
    """A new signing secret for a `json` webhook at each opt-in (none for other formats)."""
    return {"webhook_secret": new_secret() if columns.get("webhook_format") == "json" else None}


@dataclass(frozen=True, slots=True)
class ChannelRules:
    channel: Channel
    # The address column: (address, player_id) is unique, the key subscribing upserts on.
    address: InstrumentedAttribute[str | None]
    # Per-recipient transaction locks (pg_advisory_xact_lock) live in this namespace.
    lock_namespace: int
    # The columns only this medium stores beside its address (new row or fresh opt-in).
    columns: tuple[str, ...] = ()
    # Values made afresh at each opt-in, from the checked address's columns.
    fresh: Callable[[Mapping[str, Any]], dict[str, Any]] = _no_fresh_columns
    # One-recipient requests (NotificationType values) counted together against the
    # daily cap; a kind in no group is capped on its own.
    cap_groups: tuple[frozenset[str], ...] = ()
    # An active, confirmed subscriber asking again is posted its manage link.
    repeat_sends_manage_link: bool = False

    @property
    def address_column(self) -> str:
        return self.address.key

    def capped_together(self, kind: NotificationType) -> tuple[str, ...]:
        """The kinds whose requests count toward the same daily cap as `kind`."""
        for group in self.cap_groups:
            if kind in group:
                return tuple(sorted(group))
        return (kind.value,)


EMAIL = ChannelRules(
    channel=Channel.email,
    address=EmailSubscription.email,
    lock_namespace=0x4D41494C,  # "MAIL"
)
WEBHOOK = ChannelRules(
    channel=Channel.webhook,
    address=EmailSubscription.webhook_url,
    lock_namespace=0x484F4F4B,  # "HOOK"
    columns=("webhook_format", "webhook_secret"),
    fresh=_webhook_secret,
    cap_groups=(frozenset({NotificationType.confirmation, NotificationType.manage_link}),),
    repeat_sends_manage_link=True,
)
PUSH = ChannelRules(
    channel=Channel.push,
    address=EmailSubscription.push_endpoint,
    lock_namespace=0x50555348,  # "PUSH"
    columns=("push_p256dh", "push_auth"),
)
CHANNELS: Mapping[Channel, ChannelRules] = {
    rules.channel: rules for rules in (EMAIL, WEBHOOK, PUSH)
}


def rules_of(channel: str) -> ChannelRules:
    return CHANNELS[Channel(channel)]


@dataclass(frozen=True, slots=True)
class Recipient:
    """A checked, canonical address on one channel, the medium's columns to write when
    a subscription is created or opts in again, and how its opt-in is confirmed."""

    rules: ChannelRules
    address: str
    confirmation: Confirmation
    columns: Mapping[str, Any] = field(default_factory=dict)

    @property
    def confirms_by_message(self) -> bool:
        return self.confirmation.required and self.confirmation.by is ConfirmBy.message

    @property
    def secret(self) -> str | None:
        """Shown to the subscriber once, in the answer (a `json` webhook's secret)."""
        secret: str | None = self.columns.get("webhook_secret")
        return secret


async def recipient(channel: DeliveryChannel[Any, Any], given: Mapping[str, Any]) -> Recipient:
    """What a subscriber gave for `channel` (e.g. `{"email": ...}`, `{"url", "format"}`),
    checked by the channel: 422 when refused, and nothing changed."""
    try:
        address = await channel.check_address(given)
    except InvalidAddress as exc:
        raise Unprocessable(str(exc)) from exc
    rules = rules_of(channel.name)
    columns = {k: v for k, v in address.columns.items() if k in rules.columns}
    columns.update(rules.fresh(address.columns))
    return Recipient(rules, address.recipient, channel.confirmation(), columns)


def webhook_spellings(url: str) -> set[str]:
    """The stored spelling of a webhook URL as given, and its canonical one (erasure)."""
    try:
        canonical = parse_target(url, allow_private=True).url
    except RefusedURL:
        canonical = url.strip()
    return {canonical, url.strip()}
