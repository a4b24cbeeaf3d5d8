"""Claiming due players, one statement each (SPEC §6).

A claim moves the player's `next_poll_at` into the future in the same statement that
selects it with `FOR UPDATE SKIP LOCKED`. That moved time is the lease: no other worker
claims the player until it passes, and if this worker dies the player simply comes due
again. It is also the next poll time when the poll finds nothing new, so a poll that
only sees 304s writes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class ClaimedPlayer:
    player_id: int
    username: str
    previous_poll_at: datetime | None
    profile_etag: str | None
    profile_refreshed_at: datetime | None
    archive_etags: dict[str, str]
    gone: bool


_CLAIM = """
WITH due AS (
    SELECT player_id, last_polled_at AS previous_poll_at
    FROM players
    WHERE {condition}
    ORDER BY next_poll_at, player_id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE players AS p
SET last_polled_at = now(),
    last_checked_at = now(),
    -- The lease and the next turn in one: fast while a session may be running,
    -- otherwise the delay chosen at the last poll that wrote.
    is_playing = p.is_playing
        AND p.last_game_at > now() - make_interval(secs => :gap),
    next_poll_at = now() + make_interval(secs => CASE
        WHEN p.is_playing AND p.last_game_at > now() - make_interval(secs => :gap)
            THEN :playing_delay
        ELSE coalesce(p.poll_delay_seconds, :base_delay)
    END)
FROM due
WHERE p.player_id = due.player_id
RETURNING p.player_id, p.username, due.previous_poll_at, p.profile_etag,
          p.profile_refreshed_at, p.archive_etags, p.gone_at IS NOT NULL AS gone
"""

DUE = "next_poll_at <= now()"
# --once: every player not polled since this run began, due or not.
NOT_POLLED_SINCE = "(last_polled_at IS NULL OR last_polled_at < :since)"


async def claim_players(
    session: AsyncSession,
    *,
    limit: int,
    base_delay: int,
    gap_seconds: int,
    since: datetime | None = None,
) -> list[ClaimedPlayer]:
    """Claim up to `limit` players: due ones, or (with `since`) those not polled since then."""
    params: dict[str, Any] = {
        "limit": limit,
        "base_delay": base_delay,
        "gap": gap_seconds,
        "playing_delay": max(30, base_delay // 5) if base_delay >= 30 else base_delay,
    }
    condition = DUE
    if since is not None:
        condition = NOT_POLLED_SINCE
        params["since"] = since
    rows = await session.execute(text(_CLAIM.format(condition=condition)), params)
    return [
        ClaimedPlayer(
            player_id=r.player_id,
            username=r.username,
            previous_poll_at=r.previous_poll_at,
            profile_etag=r.profile_etag,
            profile_refreshed_at=r.profile_refreshed_at,
            archive_etags=dict(r.archive_etags or {}),
            gone=r.gone,
        )
        for r in rows
    ]


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
