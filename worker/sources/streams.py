"""Pure stream rules (SPEC §10), the same for every platform: no I/O, no clock reads.

A player's stream state is five columns of `players` (`stream_checked_at` set by the
first read, `is_streaming`, `stream_url`, `stream_started_at`, `stream_seen_at`);
:func:`observe_stream` turns one read ("live at this URL" or "not live") into the next
state and, when a stream starts, the one event to emit.

* The first read after a player is tracked is a baseline: a stream already live then
  never alerts.
* Not live → live starts a stream, unless it was last seen live at most
  `RESUME_GRACE_SECONDS` ago: a stream that stops and resumes within 10 minutes is the
  same stream (a dropped connection, a restart of the broadcast).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.notifications.payloads import LiveStream

RESUME_GRACE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class StreamState:
    checked: bool = False  # the baseline read happened
    live: bool = False
    url: str | None = None
    started_at: float | None = None  # the current (or last) stream's start
    seen_at: float | None = None  # the last read that saw it live


@dataclass(frozen=True, slots=True)
class StreamStart:
    """A stream that started: exactly one `stream` event."""

    started_at: float
    stream: LiveStream


def observe_stream(
    state: StreamState,
    live: LiveStream | None,
    *,
    now: float,
    previous_read: float | None = None,
) -> tuple[StreamState, StreamStart | None]:
    """Apply one read to a player's stream state: (next state, the stream that started
    or None). Idempotent: the same read again changes nothing.

    A steady state is not rewritten: `seen_at` ("last seen live") is set when a stream
    is seen ending, to `previous_read` (the read before this one, the last that saw it
    live; `now` when unknown), so a read every period costs no write per live player."""
    if live is None:
        if not state.live:
            return (state if state.checked else replace(state, checked=True)), None
        ended = now if previous_read is None else min(now, previous_read)
        return replace(state, live=False, url=None, seen_at=ended), None
    url = live.url
    if not state.checked:  # baseline: remember, never alert
        return StreamState(True, True, url, now, now), None
    if state.live:
        return (state if state.url == url else replace(state, url=url)), None
    if state.seen_at is not None and now - state.seen_at <= RESUME_GRACE_SECONDS:
        return replace(state, live=True, url=url), None
    return StreamState(True, True, url, now, now), StreamStart(now, live)


def stream_event_key(platform: str, username: str, started_at: float) -> str:
    """`stream:<platform>:<username>:<started-at>` (ISO 8601 UTC, seconds)."""
    moment = datetime.fromtimestamp(int(started_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"stream:{platform}:{username.lower()}:{moment}"
