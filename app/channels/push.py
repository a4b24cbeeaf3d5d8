"""The Web Push channel (SPEC §11): a browser's push subscription as the address.

- **Subscribing**: the endpoint obeys SPEC §9 (https, every address of its host vetted,
  unless WEBHOOK_ALLOW_PRIVATE) and the keys must be a P-256 point and a 16-byte secret
  (:func:`app.push.message.parse_keys`); the browser's permission prompt was the
  consent, so the subscription is active at once (:attr:`ConfirmBy.none`).
- **Delivering**: what an alert says is rendered once per event, down to the JSON
  around the unsubscribe link and the Topic (:class:`PreparedAlert`); per row only the
  link is signed and put in, then the body is encrypted for that browser and posted
  with a VAPID signature (:class:`PushSender` below, over the webhook sender's
  pinned connections). 404/410 → gone, 429 → retry after its wait (the host is held),
  413 and other 4xx → failed, 5xx → retried; a push service refusing connections
  (down as a whole) pauses its rows uncounted, as a webhook host does
  (:func:`app.channels.webhook.post_and_judge`, the one send both channels share).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.backoff import retry_span
from app.channels.base import (
    Address,
    Channel,
    Confirmation,
    ConfirmBy,
    Delivery,
    Event,
    InvalidAddress,
    Result,
)
from app.channels.webhook import check_url, post_and_judge, refusal_patience
from app.config import Settings
from app.models import NotificationType
from app.notifications.alerts import Alert, alert_for
from app.push.message import (
    InvalidPushKeys,
    Notification,
    NotificationTemplate,
    PushKeys,
    encrypt,
    headers,
    parse_keys,
    topic_for,
)
from app.push.vapid import VapidSigner
from app.tokens import Purpose, TokenSigner
from app.urls import link_url
from app.webhooks.client import WebhookSender
from app.webhooks.guard import (
    Resolver,
    system_resolver,
)

# -- sending one message ------------------------------------------------------------
#
# The request goes through the webhook sender, so a push endpoint gets every rule of
# SPEC §9 (https, vetted and pinned address, no redirects, 5 s, 64 KiB read) and its
# per-host lane (bounded connections, a 429 holds the host). The answer is judged like
# a webhook's (app.channels.webhook.classify), which is what RFC 8030 asks: 201
# delivered; 404/410 the subscription is gone; 429 retried after `Retry-After`; 413
# (payload too large) and other 4xx fail at once; 5xx retried with backoff.


# A push service refusing connections pauses its rows for up to a row's whole retry
# schedule (the default five attempts), unless the channel says otherwise from settings.
DEFAULT_REFUSAL_PATIENCE = retry_span(5)


@dataclass(frozen=True, slots=True)
class PushTarget:
    endpoint: str
    keys: PushKeys


class PushSender:
    """Encrypts, signs and posts push messages. One per process (it holds no
    connections of its own: the webhook sender's lanes carry them)."""

    def __init__(
        self,
        sender: WebhookSender,
        signer: VapidSigner,
        *,
        refusal_patience: float = DEFAULT_REFUSAL_PATIENCE,
    ) -> None:
        self.sender = sender
        self.signer = signer
        # A push service refusing connections (down as a whole) pauses its rows for up
        # to this long, uncounted, like a webhook host (app.channels.webhook).
        self.refusal_patience = refusal_patience

    def request(
        self, target: PushTarget, notification: Notification, player_key: str
    ) -> tuple[bytes, dict[str, str]]:
        return self.encoded_request(target, notification.encode(), topic_for(player_key))

    def encoded_request(
        self, target: PushTarget, plaintext: bytes, topic: str
    ) -> tuple[bytes, dict[str, str]]:
        """The encrypted body for this browser (a fresh key and salt each: per
        recipient by nature) and the request's headers."""
        body = encrypt(plaintext, target.keys)
        authorization = self.signer.authorization(target.endpoint)
        return body, headers(authorization, topic)

    async def send(self, target: PushTarget, notification: Notification, player_key: str) -> Result:
        """One attempt; never raises for the push service's faults."""
        return await self.send_encoded(target, notification.encode(), topic_for(player_key))

    async def send_encoded(self, target: PushTarget, plaintext: bytes, topic: str) -> Result:
        """:meth:`send` of a plaintext already encoded, under its player's Topic."""
        body, request_headers = self.encoded_request(target, plaintext, topic)
        return await post_and_judge(
            self.sender,
            target.endpoint,
            body,
            request_headers,
            refusal_patience=self.refusal_patience,
        )


@dataclass(frozen=True, slots=True)
class PreparedAlert:
    """What every browser's message of one event shares, made once per event."""

    alert: Alert
    template: NotificationTemplate  # the JSON around the unsubscribe link
    topic: str  # the player's Topic header


@dataclass(frozen=True, slots=True)
class PushMessage:
    target: PushTarget
    plaintext: bytes  # the notification's JSON, this browser's unsubscribe link in it
    topic: str


class PushChannel(Channel[PreparedAlert | None, PushMessage]):
    name = "push"
    columns = ("push_endpoint", "push_p256dh", "push_auth")

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
        self.resolver = resolver or system_resolver
        self._sender = sender
        self._push: PushSender | None = None

    @property
    def push(self) -> PushSender:
        """Built on first use: the API process only checks addresses, never sends."""
        if self._push is None:
            sender = self._sender or WebhookSender.from_settings(self.settings)
            vapid = VapidSigner(self.settings.resolved_vapid_key(), self.settings.vapid_contact)
            self._push = PushSender(sender, vapid, refusal_patience=refusal_patience(self.settings))
        return self._push

    async def aclose(self) -> None:
        if self._push is not None:
            await self._push.sender.aclose()
        elif self._sender is not None:
            await self._sender.aclose()

    # -- subscribing ----------------------------------------------------------------

    async def check_address(self, given: Mapping[str, Any]) -> Address:
        endpoint, keys = given.get("endpoint"), given.get("keys")
        if not isinstance(endpoint, str):
            raise InvalidAddress("push.endpoint is required")
        if not isinstance(keys, Mapping) or not all(
            isinstance(keys.get(k), str) for k in ("p256dh", "auth")
        ):
            raise InvalidAddress("push.keys.p256dh and push.keys.auth are required")
        try:
            parsed = parse_keys(keys["p256dh"], keys["auth"])
        except InvalidPushKeys as exc:
            raise InvalidAddress(f"push.{exc}") from exc
        target = await check_url(endpoint, "push.endpoint", self.settings, self.resolver)
        return Address(
            target.url,
            {
                "push_endpoint": target.url,
                "push_p256dh": parsed.p256dh_text,
                "push_auth": parsed.auth_text,
            },
        )

    def confirmation(self) -> Confirmation:
        # The browser's own permission prompt is the consent (SPEC §4): active at once.
        return Confirmation(ConfirmBy.none, required=False)

    # -- delivering -----------------------------------------------------------------

    def prepare(self, event: Event) -> PreparedAlert | None:
        alert = alert_for(event, self.settings.public_url)
        if alert is None:
            return None
        notification = Notification(
            title=alert.title,
            body=alert.body,
            url=alert.url,
            tag=f"player:{alert.player_key}",
        )
        return PreparedAlert(
            alert, NotificationTemplate.of(notification), topic_for(alert.player_key)
        )

    def render(self, prepared: PreparedAlert | None, delivery: Delivery) -> PushMessage | None:
        if prepared is None or delivery.kind not in _ALERT_KINDS or not delivery.wanted:
            return None  # push subscriptions get alerts only (no confirmation, no digest)
        # Per row only what differs: this browser's keys and its signed unsubscribe link.
        endpoint = delivery.target.get("push_endpoint") or ""
        keys = parse_keys(
            delivery.target.get("push_p256dh") or "", delivery.target.get("push_auth") or ""
        )
        token = self.signer.sign(Purpose.unsubscribe, delivery.subscription_id, endpoint)
        unsubscribe_url = link_url(self.settings.public_url, Purpose.unsubscribe, token)
        return PushMessage(
            PushTarget(endpoint, keys), prepared.template.encode(unsubscribe_url), prepared.topic
        )

    async def send(self, message: PushMessage, delivery: Delivery) -> Result:
        return await self.push.send_encoded(message.target, message.plaintext, message.topic)


_ALERT_KINDS = frozenset({NotificationType.live_match, "stream_started"})
