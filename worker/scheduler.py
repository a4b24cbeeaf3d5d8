"""Claiming due players (SPEC §6).

A claim locks due players with `FOR UPDATE SKIP LOCKED` and moves each one's
`next_poll_at` into the future in the same transaction. That moved time is the lease:
no other worker claims the player until it passes, and if this worker dies the player
simply comes due again. It is also the next turn when the poll finds nothing new, so a
poll that only sees 304s writes nothing more. The turn itself is decided by
:func:`worker.schedule.next_poll_delay`, the same function the poll's writer uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Player
from worker.schedule import Policy, PollView, in_session, next_poll_delay


@dataclass(frozen=True, slots=True)
class ClaimedPlayer:
    player_id: int
    username: str
    previous_poll_at: datetime | None
    profile_etag: str | None
    profile_refreshed_at: datetime | None
    archive_etags: dict[str, str]
    gone: bool


def poll_view(
    *, last_game_at: datetime | None, status: str | None, gone_at: datetime | None, failures: int
) -> PollView:
    """The schedule's view of a player, from its row (claim) or ORM object (writer)."""
    return PollView(
        last_live_end=None if last_game_at is None else last_game_at.timestamp(),
        closed=gone_at is not None or (status or "").startswith("closed"),
        failures=failures,
    )


def player_view(player: Player) -> PollView:
    return poll_view(
        last_game_at=player.last_game_at,
        status=player.status,
        gone_at=player.gone_at,
        failures=player.failure_count,
    )


_LOCK_DUE = """
SELECT player_id, username, last_polled_at, profile_etag, profile_refreshed_at,
       archive_etags, gone_at, status, last_game_at, failure_count, now() AS now
FROM players
WHERE {condition}
ORDER BY next_poll_at, player_id
LIMIT :limit
FOR UPDATE SKIP LOCKED
"""

_SET_TURNS = """
UPDATE players AS p
SET last_polled_at = t.now,
    last_checked_at = t.now,
    is_playing = v.playing,
    poll_delay_seconds = v.delay,
    next_poll_at = t.now + make_interval(secs => v.delay)
FROM unnest(CAST(:ids AS bigint[]), CAST(:playing AS boolean[]), CAST(:delays AS integer[]))
     AS v(player_id, playing, delay),
     (SELECT CAST(:now AS timestamptz) AS now) AS t
WHERE p.player_id = v.player_id
"""

DUE = "next_poll_at <= now()"
# --once: every player not polled since this run began, due or not.
NOT_POLLED_SINCE = "(last_polled_at IS NULL OR last_polled_at < :since)"


async def claim_players(
    session: AsyncSession,
    *,
    limit: int,
    policy: Policy,
    since: datetime | None = None,
) -> list[ClaimedPlayer]:
    """Claim up to `limit` players: due ones, or (with `since`) those not polled since then."""
    params: dict[str, Any] = {"limit": limit}
    condition = DUE
    if since is not None:
        condition = NOT_POLLED_SINCE
        params["since"] = since
    rows = (await session.execute(text(_LOCK_DUE.format(condition=condition)), params)).all()
    if not rows:
        return []
    now: datetime = rows[0].now
    views = [
        poll_view(
            last_game_at=r.last_game_at,
            status=r.status,
            gone_at=r.gone_at,
            failures=r.failure_count,
        )
        for r in rows
    ]
    t = now.timestamp()
    await session.execute(
        text(_SET_TURNS),
        {
            "ids": [r.player_id for r in rows],
            "playing": [not v.closed and in_session(v, now=t, policy=policy) for v in views],
            "delays": [round(next_poll_delay(v, now=t, policy=policy)) for v in views],
            "now": now,
        },
    )
    return [
        ClaimedPlayer(
            player_id=r.player_id,
            username=r.username,
            previous_poll_at=r.last_polled_at,
            profile_etag=r.profile_etag,
            profile_refreshed_at=r.profile_refreshed_at,
            archive_etags=dict(r.archive_etags or {}),
            gone=r.gone_at is not None,
        )
        for r in rows
    ]


def next_turn(player: Player, now: datetime, policy: Policy) -> timedelta:
    """The writer's side: the same rule, applied to the row it just updated."""
    return timedelta(
        seconds=next_poll_delay(player_view(player), now=now.timestamp(), policy=policy)
    )


async def release_players(session: AsyncSession, player_ids: list[int]) -> None:
    """Give back claimed players this worker will not poll (shutdown): due again now."""
    if player_ids:
        await session.execute(
            text("UPDATE players SET next_poll_at = now() WHERE player_id = ANY(:ids)"),
            {"ids": player_ids},
        )


async def seconds_until_next_due(session: AsyncSession) -> float | None:
    value = await session.scalar(
        text("SELECT extract(epoch FROM min(next_poll_at) - now()) FROM players")
    )
    return None if value is None else max(0.0, float(value))
