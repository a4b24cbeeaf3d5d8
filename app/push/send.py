"""Sending one push message and judging the push service's answer (SPEC §11).

The request goes through the webhook sender, so a push endpoint gets every rule of
SPEC §9 (https, vetted and pinned address, no redirects, 5 s, 64 KiB read) and its
per-host lane (bounded connections, a 429 holds the host). The answer is judged like
a webhook's (:func:`app.webhooks.outcome.classify`), which is what RFC 8030 asks:
201 delivered; 404/410 the subscription is gone; 429 retried after `Retry-After`;
413 (payload too large) and other 4xx fail at once; 5xx retried with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.channels.base import Result, Verdict
from app.push.message import Notification, PushKeys, encrypt, headers, topic_for
from app.push.vapid import VapidSigner
from app.webhooks.client import HostOnHold, WebhookSender, WebhookSendError
from app.webhooks.guard import RefusedURL
from app.webhooks.outcome import classify


@dataclass(frozen=True, slots=True)
class PushTarget:
    endpoint: str
    keys: PushKeys


class PushSender:
    """Encrypts, signs and posts push messages. One per process (it holds no
    connections of its own: the webhook sender's lanes carry them)."""

    def __init__(self, sender: WebhookSender, signer: VapidSigner) -> None:
        self.sender = sender
        self.signer = signer

    def request(
        self, target: PushTarget, notification: Notification, player_key: str
    ) -> tuple[bytes, dict[str, str]]:
        body = encrypt(notification.encode(), target.keys)
        authorization = self.signer.authorization(target.endpoint)
        return body, headers(authorization, topic_for(player_key))

    async def send(
        self, target: PushTarget, notification: Notification, player_key: str
    ) -> Result:
        """One attempt; never raises for the push service's faults."""
        body, request_headers = self.request(target, notification, player_key)
        try:
            response = await self.sender.post(target.endpoint, body, request_headers)
        except HostOnHold as exc:
            return Result(Verdict.paused, str(exc), exc.seconds)
        except RefusedURL as exc:
            return Result(Verdict.failed, f"refused: {exc}")
        except WebhookSendError as exc:
            return Result(Verdict.retry, str(exc)[:1000] or type(exc).__name__)
        result = classify(response)
        if result.verdict is Verdict.retry and result.retry_after is not None:
            self.sender.hold(self.sender.check(target.endpoint).host, result.retry_after)
        return result
