"""The reads behind a player's page, feed and badge, and the home page's lists (SPEC §12).

Each is one statement on the API's read pool (app.db.ReadPool: autocommit, no ORM), since
badges and feeds are fetched by every viewer of an overlay or a README. Lists come back
as one JSON array in one row (`json_agg`), so every read is a single `fetchrow`.

A player's timeline is their `live_match` (a session) and `stream_started` (a stream)
events. Other events carry a player id too (one confirmation per subscriber), so the
timeline reads go through the partial index `ix_events_player_timeline`, whose predicate
`TIMELINE_KINDS` repeats word for word.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from app.db import ReadPool
from app.models import Player
from app.players.keys import InvalidKey, PlayerKey, parse_key
from app.players.service import subscriber_count_column

SESSION_KIND: Final = "live_match"
STREAM_KIND: Final = "stream_started"
# The predicate of the partial index ix_events_player_timeline (migration 0010).
TIMELINE_KINDS: Final = "kind IN ('live_match', 'stream_started')"
FEED_SIZE: Final = 50
RECENT_DAYS: Final = 30
PATTERN_DAYS: Final = 90
# A page lists at most this many recent sessions and streams (a month of a busy player).
RECENT_LIMIT: Final = 200


def _compiled(statement: Any) -> str:
    return str(statement.compile(dialect=asyncpg_dialect()))  # type: ignore[no-untyped-call]


# The one place a key becomes a row condition: the unique players.key (migration 0008).
_WHERE_KEY = "key = $1"


def key_of(raw: str) -> PlayerKey | None:
    """The player key `raw` names, or None: to a page, a feed or a badge, anything that
    is not a key is simply no tracked player (a 404), never an error of its own."""
    if len(raw) > 80:
        return None
    try:
        return parse_key(raw)
    except InvalidKey:
        return None


def _key_args(key: PlayerKey) -> tuple[str] | None:
    """The bind values of `_WHERE_KEY` (None when no row can match: kept for callers)."""
    return (key.key,)


# -- the badge -------------------------------------------------------------------------

_BADGE = f"SELECT username, is_playing, is_streaming FROM players WHERE {_WHERE_KEY}"


async def badge_state(pool: ReadPool, key: PlayerKey) -> dict[str, Any] | None:
    """username, is_playing, is_streaming of a tracked player, or None."""
    args = _key_args(key)
    row = await pool.fetchrow(_BADGE, *args) if args else None
    return dict(row) if row is not None else None


# -- the feed --------------------------------------------------------------------------

# What a conditional request needs and nothing more: the player's names and a summary of
# the feed's window (its newest event, its size, the sum of its ids: any entry added or
# pruned changes one of them). Entries are never rewritten (app.notifications.outbox).
_FEED_HEAD = f"""
SELECT p.player_id, p.username, p.name, p.title, p.tracked_since,
       w.newest, w.n, w.ids, w.changed_at
FROM players p
LEFT JOIN LATERAL (
    SELECT max(id) AS newest, count(*) AS n, sum(id) AS ids, max(created_at) AS changed_at
    FROM (
        SELECT id, created_at FROM events e
        WHERE e.player_id = p.player_id AND e.{TIMELINE_KINDS}
        ORDER BY e.occurred_at DESC LIMIT {FEED_SIZE}
    ) window_rows
) w ON true
WHERE p.{_WHERE_KEY}
"""

_ENTRY_COLUMNS = "id, kind, key, payload, occurred_at, created_at"

_FEED_ENTRIES = f"""
SELECT coalesce(json_agg(w ORDER BY w.occurred_at DESC, w.id DESC), '[]'::json) AS entries
FROM (
    SELECT {_ENTRY_COLUMNS} FROM events
    WHERE player_id = $1 AND {TIMELINE_KINDS}
    ORDER BY occurred_at DESC, id DESC LIMIT {FEED_SIZE}
) w
"""


async def feed_head(pool: ReadPool, key: PlayerKey) -> dict[str, Any] | None:
    args = _key_args(key)
    row = await pool.fetchrow(_FEED_HEAD, *args) if args else None
    return dict(row) if row is not None else None


async def feed_entries(pool: ReadPool, player_id: int) -> list[dict[str, Any]]:
    """The newest `FEED_SIZE` sessions and streams, newest first (timestamps as ISO text)."""
    row = await pool.fetchrow(_FEED_ENTRIES, player_id)
    return list(row["entries"]) if row is not None else []


# -- the page --------------------------------------------------------------------------

_PAGE_PLAYER = _compiled(
    select(
        Player.player_id,
        Player.platform,
        Player.username,
        Player.name,
        Player.title,
        Player.url,
        Player.followers,
        Player.country,
        Player.status,
        Player.is_playing,
        Player.is_streaming,
        Player.stream_url,
        Player.current_game_url,
        Player.last_game_at,
        Player.last_online,
        Player.tracked_since,
        subscriber_count_column(),
    ).where(Player.key == bindparam("key"))
)

_RECENT = f"""
SELECT coalesce(json_agg(w ORDER BY w.occurred_at DESC, w.id DESC), '[]'::json) AS entries
FROM (
    SELECT {_ENTRY_COLUMNS} FROM events
    WHERE player_id = $1 AND {TIMELINE_KINDS}
      AND occurred_at >= now() - make_interval(days => {RECENT_DAYS})
    ORDER BY occurred_at DESC, id DESC LIMIT {RECENT_LIMIT}
) w
"""

# Live games of the last 90 days by UTC weekday (0 = Monday) and hour: each game of a
# session counts at its start (as the worker's scheduler counts them), a session whose
# payload names no games counts once at its start.
_PATTERN = f"""
SELECT coalesce(json_agg(json_build_array(d, h, n)), '[]'::json) AS cells
FROM (
    SELECT extract(isodow FROM at)::int - 1 AS d, extract(hour FROM at)::int AS h,
           count(*)::int AS n
    FROM (
        SELECT coalesce(
            CASE WHEN jsonb_typeof(g -> 'start_time') = 'number'
                 THEN to_timestamp((g ->> 'start_time')::double precision) END,
            e.occurred_at
        ) AT TIME ZONE 'UTC' AS at
        FROM events e
        LEFT JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(e.payload -> 'games') = 'array'
                 THEN e.payload -> 'games' ELSE '[]'::jsonb END
        ) g ON true
        WHERE e.player_id = $1 AND e.{TIMELINE_KINDS} AND e.kind = '{SESSION_KIND}'
          AND e.occurred_at >= now() - make_interval(days => {PATTERN_DAYS})
    ) games
    GROUP BY 1, 2
) cells
"""


async def page_player(pool: ReadPool, key: PlayerKey) -> dict[str, Any] | None:
    args = _key_args(key)
    row = await pool.fetchrow(_PAGE_PLAYER, *args) if args else None
    return dict(row) if row is not None else None


async def recent_entries(pool: ReadPool, player_id: int) -> list[dict[str, Any]]:
    """Sessions and streams of the last `RECENT_DAYS` days, newest first."""
    row = await pool.fetchrow(_RECENT, player_id)
    return list(row["entries"]) if row is not None else []


async def play_pattern(pool: ReadPool, player_id: int) -> dict[tuple[int, int], int]:
    """Live games of the last `PATTERN_DAYS` days per (UTC weekday, hour)."""
    row = await pool.fetchrow(_PATTERN, player_id)
    cells = row["cells"] if row is not None else []
    return {(int(d), int(h)): int(n) for d, h, n in cells}


# -- home ------------------------------------------------------------------------------

HOME_LIST_SIZE: Final = 12

_LIVE_NOW = f"""
SELECT coalesce(json_agg(w ORDER BY w.followers DESC, w.username), '[]'::json) AS players
FROM (
    SELECT platform, username, name, title, followers, is_playing, is_streaming
    FROM players WHERE is_playing OR is_streaming
    ORDER BY followers DESC, username LIMIT {HOME_LIST_SIZE}
) w
"""

_MOST_FOLLOWED = f"""
SELECT coalesce(json_agg(w ORDER BY w.followers DESC, w.username), '[]'::json) AS players
FROM (
    SELECT platform, username, name, title, followers, is_playing, is_streaming
    FROM players ORDER BY followers DESC, username LIMIT {HOME_LIST_SIZE}
) w
"""


async def live_now(pool: ReadPool) -> list[dict[str, Any]]:
    """Tracked players playing or streaming now, most followed first."""
    row = await pool.fetchrow(_LIVE_NOW)
    return list(row["players"]) if row is not None else []


async def most_followed(pool: ReadPool) -> list[dict[str, Any]]:
    row = await pool.fetchrow(_MOST_FOLLOWED)
    return list(row["players"]) if row is not None else []
