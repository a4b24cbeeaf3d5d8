"""Claiming due players (SPEC §6).

A claim locks due players with `FOR UPDATE SKIP LOCKED`, in the order of
:data:`worker.schedule.CLAIM_ORDER` rendered as SQL (players not polled for
`POLL_MAX_WAIT_SECONDS` first, oldest first; then the largest `poll_rate * age**2`),
and moves each one's `next_poll_at` into the future in the same transaction. That
moved time is the lease: no other worker claims the player until it passes, and if
this worker dies the player simply comes due again. It is also the next turn when the
poll finds nothing new, so a poll that only sees 304s writes nothing more. The turn
itself is decided by :func:`worker.schedule.plan`, the same function the poll's writer
uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Player
from worker.schedule import (
    CLAIM_ORDER,
    Activity,
    Policy,
    PollView,
    Turn,
    claim_params,
    in_session,
    plan,
)

# A claim takes at most this many seconds of the request budget at once, so the
# order stays fresh and several workers share the due players.
CLAIM_HORIZON_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ClaimedPlayer:
    player_id: int
    username: str
    previous_poll_at: datetime | None
    profile_etag: str | None
    profile_refreshed_at: datetime | None
    archive_etags: dict[str, str]
    gone: bool
    subscribers: int = 0


def poll_view(
    *,
    last_game_at: datetime | None,
    status: str | None,
    gone_at: datetime | None,
    failures: int,
    subscribers: int,
    activity: dict[str, Any] | None,
) -> PollView:
    """The schedule's view of a player, from its row (claim) or ORM object (writer)."""
    return PollView(
        last_live_end=None if last_game_at is None else last_game_at.timestamp(),
        closed=gone_at is not None or (status or "").startswith("closed"),
        failures=failures,
        subscribers=subscribers,
        activity=Activity.from_json(activity),
    )


_LOCK = """
SELECT p.player_id, p.username, p.last_polled_at, p.profile_etag, p.profile_refreshed_at,
       p.archive_etags, p.gone_at, p.status, p.last_game_at, p.failure_count, p.activity,
       now() AS now,
       (SELECT count(*) FROM email_subscriptions AS s
        WHERE s.player_id = p.player_id AND s.is_active AND s.confirmed_at IS NOT NULL
       ) AS subscribers
FROM players AS p
WHERE {condition}
ORDER BY {order}
LIMIT :limit
FOR UPDATE OF p SKIP LOCKED
"""

_SET_TURNS = """
UPDATE players AS p
SET last_polled_at = t.now,
    last_checked_at = t.now,
    is_playing = v.playing,
    poll_delay_seconds = round(v.delay),
    poll_rate = v.rate,
    next_poll_at = t.now + make_interval(secs => v.delay)
FROM unnest(CAST(:ids AS bigint[]), CAST(:playing AS boolean[]),
            CAST(:delays AS float8[]), CAST(:rates AS float8[]))
     AS v(player_id, playing, delay, rate),
     (SELECT CAST(:now AS timestamptz) AS now) AS t
WHERE p.player_id = v.player_id
"""

# The archive schedule serves Chess.com players (Lichess ones wait at 'infinity' and are
# swept by worker.sources.lichess).
CHESSCOM = "p.platform = 'chesscom'"
DUE = f"p.next_poll_at <= now() AND {CHESSCOM}"
# --once: every player not polled since this run began, due or not.
NOT_POLLED_SINCE = f"(p.last_polled_at IS NULL OR p.last_polled_at < :since) AND {CHESSCOM}"


def claim_limit(limit: int, requests_per_second: float) -> int:
    return max(1, min(limit, math.ceil(requests_per_second * CLAIM_HORIZON_SECONDS)))


async def claim_players(
    session: AsyncSession,
    *,
    limit: int,
    policy: Policy,
    since: datetime | None = None,
) -> list[ClaimedPlayer]:
    """Claim up to `limit` players: due ones, or (with `since`) those not polled since then."""
    params: dict[str, Any] = {"limit": claim_limit(limit, policy.requests_per_second)}
    if since is None:
        sql = _LOCK.format(condition=DUE, order=CLAIM_ORDER.sql())
        params.update(claim_params(policy))
    else:
        sql = _LOCK.format(condition=NOT_POLLED_SINCE, order="p.next_poll_at, p.player_id")
        params["since"] = since
    rows = (await session.execute(text(sql), params)).all()
    if not rows:
        return []
    now: datetime = rows[0].now
    t = now.timestamp()
    # Columns by keyword into the planner's pure view, and below into what a poll needs
    # (alike in shape to GameRecord.from_game: see there).
    views = [
        poll_view(
            last_game_at=r.last_game_at,
            status=r.status,
            gone_at=r.gone_at,
            failures=r.failure_count,
            subscribers=r.subscribers,
            activity=r.activity,
        )
        for r in rows
    ]
    turns = [plan(v, now=t, policy=policy) for v in views]
    await session.execute(
        text(_SET_TURNS),
        {
            "ids": [r.player_id for r in rows],
            "playing": [not v.closed and in_session(v, now=t, policy=policy) for v in views],
            "delays": [turn.delay for turn in turns],
            "rates": [turn.rate for turn in turns],
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
            subscribers=r.subscribers,
        )
        for r in rows
    ]


def next_turn(player: Player, now: datetime, policy: Policy, *, subscribers: int) -> Turn:
    """The writer's side: the same rule, applied to the row it just updated."""
    view = poll_view(
        last_game_at=player.last_game_at,
        status=player.status,
        gone_at=player.gone_at,
        failures=player.failure_count,
        subscribers=subscribers,
        activity=player.activity,
    )
    return plan(view, now=now.timestamp(), policy=policy)


async def release_players(session: AsyncSession, player_ids: list[int]) -> None:
    """Give back claimed players this worker will not poll (shutdown): due again now."""
    if player_ids:
        await session.execute(
            text("UPDATE players SET next_poll_at = now() WHERE player_id = ANY(:ids)"),
            {"ids": player_ids},
        )


async def count_tracked(session: AsyncSession) -> int:
    """Players the request budget serves (closed accounts excepted)."""
    value = await session.scalar(
        text("SELECT count(*) FROM players AS p WHERE gone_at IS NULL AND " + CHESSCOM)
    )
    return int(value or 0)


async def seconds_until_next_due(session: AsyncSession) -> float | None:
    value = await session.scalar(
        text(
            "SELECT extract(epoch FROM min(next_poll_at) - now()) FROM players AS p WHERE "
            + CHESSCOM
        )
    )
    return None if value is None else max(0.0, float(value))
