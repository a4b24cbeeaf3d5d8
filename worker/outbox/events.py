"""The events of claimed rows, loaded once and prepared once per channel.

A bounded LRU by event id: whatever the audience, it holds about two batches' worth of
events (the events of the rows waiting for a sender, and of a batch being claimed).
What a channel prepared from an event (an email's rendered MIME skeleton, say) is kept
with it, made when the first row of that channel needs it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.base import Event
from app.channels.registry import AnyChannel
from app.notifications.payloads import load_payload
from worker.outbox.store import EVENTS

log = logging.getLogger(__name__)

EVENT_CACHE_SIZE = 256  # events kept at least (two batches' worth of events)


@dataclass(slots=True)
class CachedEvent:
    event: Event | None  # None: the payload cannot be read
    payload: dict[str, Any]  # as stored (for metrics)
    error: str | None = None  # why it cannot be read (every row of it fails)
    # What each channel prepared from it (or why it could not).
    prepared: dict[str, Any] = field(default_factory=dict)


class _PrepareFailed:
    def __init__(self, error: str) -> None:
        self.error = error


class EventCache:
    def __init__(self, size: int = EVENT_CACHE_SIZE) -> None:
        self.size = max(size, EVENT_CACHE_SIZE)
        self._events: OrderedDict[int, CachedEvent] = OrderedDict()

    async def load(self, session: AsyncSession, ids: Iterable[int]) -> None:
        """Make sure the events ``ids`` are cached (one query for those missing)."""
        wanted = set(ids)
        for event_id in wanted & self._events.keys():
            self._events.move_to_end(event_id)  # in use: newest, never evicted below
        missing = wanted - self._events.keys()
        if missing:
            found = await session.execute(EVENTS, {"ids": sorted(missing)})
            for row in found:
                self._remember(row.id, _read(row))

    def _remember(self, event_id: int, event: CachedEvent) -> None:
        self._events[event_id] = event
        self._events.move_to_end(event_id)
        while len(self._events) > self.size:
            self._events.popitem(last=False)

    def prepared(self, event_id: int, channel: AnyChannel) -> Any:
        """What ``channel`` made of the event, made once; raises when it cannot be."""
        cached = self._events.get(event_id)
        if cached is None:
            raise LookupError(f"event {event_id} is gone")
        if cached.event is None:
            raise ValueError(cached.error or "event cannot be read")
        prepared = cached.prepared.get(channel.name)
        if prepared is None:
            try:
                prepared = channel.prepare(cached.event)
            except Exception as exc:  # what cannot be prepared never will: fail its rows
                log.exception("cannot prepare event %s for %s", event_id, channel.name)
                prepared = _PrepareFailed(f"{type(exc).__name__}: {exc}")
            cached.prepared[channel.name] = prepared
        if isinstance(prepared, _PrepareFailed):
            raise ValueError(prepared.error)
        return prepared

    def payload(self, event_id: int) -> dict[str, Any]:
        """The stored payload of a cached event (for metrics); empty when not cached."""
        cached = self._events.get(event_id)
        return cached.payload if cached is not None else {}


def _read(row: Any) -> CachedEvent:
    payload = row.payload or {}
    try:
        event = Event(
            id=row.id,
            kind=row.kind,
            key=row.key,
            payload=load_payload(row.kind, payload),
            occurred_at=row.occurred_at,
            player_username=row.username,
            player_name=row.name,
            player_platform=row.platform,
        )
    except Exception as exc:  # a payload that cannot be read never will: fail its rows
        log.exception("cannot read event %s", row.id)
        return CachedEvent(None, payload, f"bad payload: {exc}"[:500])
    return CachedEvent(event, payload)
