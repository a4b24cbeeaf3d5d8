"""What a webhook's answer means for the outbox row (SPEC §9). Pure: no I/O.

2xx delivered; 429 retried after the wait the receiver asked for (``Retry-After`` in
seconds or as an HTTP date, or Discord's ``retry_after`` in the JSON body); 404 and
410 mean the webhook is gone, so the subscription ends; 408 and 5xx are retried with
backoff; any other answer (a redirect, 400, 401, 403...) will not get better by
retrying and fails the row at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from app.channels.base import DELIVERED, Result, Verdict
from app.retry_after import parse_retry_after
from app.webhooks.client import WebhookResponse

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
