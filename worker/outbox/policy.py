"""What a channel's verdict means for an outbox row (SPEC §7): the retry policy. Pure.

- delivered → ``sent``;
- retry → again after the receiver's wait or the backoff schedule (:func:`app.backoff.
  retry_delay`: 5 s, 2 min, 10 min, 30 min), ``failed`` once ``max_attempts`` are spent;
- paused → nothing was sent: the attempt is not counted, the row waits;
- gone → ``failed``, and the subscription ends;
- failed, skipped → ``failed`` at once.
"""

from __future__ import annotations

from app.backoff import retry_delay
from app.channels.base import Result, Verdict
from worker.outbox.store import ClaimedRow, Outcome

PAUSE_SECONDS = 1.0  # a paused row's wait when its channel did not say
SKIPPED = Result(Verdict.skipped, "skipped: subscription no longer active")


def judge(row: ClaimedRow, result: Result, *, max_attempts: int, first_retry: float) -> Outcome:
    verdict = result.verdict
    if verdict is Verdict.delivered:
        return Outcome(row, sent=True)
    error = (result.error or verdict.value)[:1000]
    if verdict is Verdict.paused:
        delay = result.retry_after if result.retry_after is not None else PAUSE_SECONDS
        return Outcome(row, sent=False, postponed=True, delay=delay, error=error, label="postponed")
    if verdict is Verdict.skipped:
        return Outcome(row, sent=False, final=True, error=error, label="skipped")
    if verdict is Verdict.gone:
        error = f"gone: {error}"[:1000]
    final = verdict is not Verdict.retry or row.attempts >= max_attempts
    delay = 0.0
    if not final:
        delay = result.retry_after or retry_delay(row.attempts, first=first_retry)
    return Outcome(
        row, sent=False, final=final, delay=delay, error=error,
        label="failed" if final else "retry", deactivate=verdict is Verdict.gone,
    )  # fmt: skip
