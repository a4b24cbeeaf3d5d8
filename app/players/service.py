"""Player rules: tracking, profile refresh, listing (SPEC §4). Services flush, never commit.

A player is named by its key (`hikaru`, `lichess:drnykterstein`, app.players.keys);
every lookup is by the `key` column, so a Chess.com username is its own key and every
existing path keeps its meaning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.chesscom.client import ChessComClient, NotModified
from app.chesscom.errors import ChessComError, PlayerNotFound
from app.chesscom.payloads import Profile
from app.chesscom.retry import with_retries
from app.db import ReadPool
from app.errors import AppError, NotFound, Unprocessable, UpstreamUnavailable
from app.lichess.payloads import LichessUser, player_url
from app.models import EmailSubscription, Player
from app.models.player import LICHESS_IDS
from app.players.keys import InvalidKey, Platform, PlayerKey, key_of, parse_key
from app.players.platforms import Platforms
from app.players.schemas import PlayerOut

log = logging.getLogger(__name__)


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def profile_columns(profile: Profile) -> dict[str, Any]:
    """The players-table columns a Chess.com profile fills."""
    return {
        "username": profile.username.lower(),
        "name": profile.name,
        "url": profile.url,
        "avatar": profile.avatar,
        "title": profile.title,
        "followers": profile.followers or 0,
        "country": profile.country_code,
        "location": profile.location,
        "status": profile.status,
        "league": profile.league,
        "last_online": _utc(profile.last_online),
        "joined": _utc(profile.joined),
        "is_streamer": bool(profile.is_streamer),
        "verified": bool(profile.verified),
        "streaming_platforms": list(profile.streaming_platforms or []),
    }


def lichess_columns(user: LichessUser) -> dict[str, Any]:
    """The players-table columns a Lichess account fills."""
    profile = user.profile
    return {
        "username": user.id,
        "name": (profile.real_name if profile else None) or user.username,
        "url": user.url or player_url(user.username),
        "title": user.title,
        "country": ((profile.flag or profile.country or "")[:10] or None) if profile else None,
        "location": (profile.location or "")[:200] or None if profile else None,
        "status": "closed" if user.closed else None,
        "last_online": _utc(user.seen_at / 1000) if user.seen_at else None,
        "joined": _utc(user.created_at / 1000) if user.created_at else None,
        "verified": user.verified,
    }


def player_key(value: str) -> PlayerKey:
    """A key from a request, or Unprocessable (422) naming what is wrong."""
    try:
        return parse_key(value)
    except InvalidKey as exc:
        raise Unprocessable(str(exc)) from exc


def subscriber_count_column() -> Any:
    """Active, confirmed subscribers of a player, as a correlated scalar subquery.

    Its condition is the predicate of the partial index `ix_email_subscriptions_deliverable`
    word for word (`is_active`, not `is_active IS true`, which PostgreSQL cannot match to
    it): an index scan of the player's deliverable rows, not a scan of every subscription.
    """
    return (
        select(func.count(EmailSubscription.id))
        .where(
            and_(
                EmailSubscription.player_id == Player.player_id,
                EmailSubscription.is_active,
                EmailSubscription.confirmed_at.is_not(None),
            )
        )
        .correlate(Player)
        .scalar_subquery()
        .label("subscriber_count")
    )


def _with_count() -> Select[Any]:
    return select(Player, subscriber_count_column())


def attach_count(player: Player, count: int) -> Player:
    player.subscriber_count = count  # type: ignore[attr-defined]
    return player


async def fetch_profile(client: ChessComClient, username: str) -> Profile:
    """The current profile from Chess.com; domain errors for unknown players or outages."""
    try:
        result = await with_retries(lambda: client.get_profile(username))
    except PlayerNotFound as exc:
        raise NotFound(f"Chess.com has no player named '{username}'") from exc
    except ChessComError as exc:
        log.warning("chess.com unavailable while fetching %s: %s", username, exc)
        raise UpstreamUnavailable() from exc
    if isinstance(result, NotModified):  # pragma: no cover - we sent no ETag
        raise UpstreamUnavailable()
    return result.data


# GET /players/{username}: the public columns and the count, one statement built and
# compiled once (building it per request cost more than running it).
PUBLIC_COLUMNS = (
    "player_id",
    "platform",
    "key",
    "username",
    "name",
    "url",
    "avatar",
    "title",
    "followers",
    "country",
    "location",
    "status",
    "league",
    "last_online",
    "joined",
    "is_streamer",
    "verified",
    "is_playing",
    "is_streaming",
    "stream_url",
    "current_game_url",
    "streaming_platforms",
    "tracked_since",
    "last_checked_at",
)
_READ_PLAYER = select(
    *(getattr(Player, c) for c in PUBLIC_COLUMNS), subscriber_count_column()
).where(Player.key == bindparam("key"))


# The same statement as text for asyncpg itself: SQLAlchemy's execution layer (a
# greenlet switch, result processing) cost as much CPU as the query's own round trip.
_READ_PLAYER_SQL = str(_READ_PLAYER.compile(dialect=asyncpg_dialect()))  # type: ignore[no-untyped-call]


async def read_player(pool: ReadPool, key: str) -> dict[str, Any]:
    """A tracked player's public columns and subscriber count, or NotFound."""
    name = key.strip().lower()
    row = await pool.fetchrow(_READ_PLAYER_SQL, name)
    if row is None:
        raise NotFound(f"Player '{name}' is not tracked")
    return dict(row)


async def player_json(pool: ReadPool, username: str) -> bytes:
    """THE answer of `GET /players/{username}`: the Player JSON, or NotFound.

    Both doors of that operation call this and only this: the read ahead of the
    framework's stack (app/api/fast_read.py) and the documented FastAPI route (what the
    fast path does not match). Serialised once, by the model itself."""
    return PlayerOut.model_validate(await read_player(pool, username)).model_dump_json().encode()


async def get_player(session: AsyncSession, key: str) -> Player:
    name = key.strip().lower()
    row = (await session.execute(_with_count().where(Player.key == name))).first()
    if row is None:
        raise NotFound(f"Player '{name}' is not tracked")
    return attach_count(row[0], row[1])


async def find_player(session: AsyncSession, key: str) -> Player | None:
    return await session.scalar(select(Player).where(Player.key == key.strip().lower()))


async def track_player(
    session: AsyncSession, platforms: Platforms, key: str
) -> tuple[Player, bool]:
    """Start tracking the player named by `key`. Returns (player, created). Nothing is
    stored on failure."""
    wanted = player_key(key)
    existing = await find_player(session, wanted.key)
    if existing is not None:
        return await get_player(session, wanted.key), False
    if wanted.platform is Platform.lichess:
        return await _track_lichess(session, platforms, wanted)
    return await _track_chesscom(session, platforms.chesscom, wanted.username)


async def _track_lichess(
    session: AsyncSession, platforms: Platforms, wanted: PlayerKey
) -> tuple[Player, bool]:
    user = await platforms.lichess_profiles().fetch(wanted.username)
    columns = lichess_columns(user)
    stmt: Any = (
        insert(Player)
        .values(
            player_id=LICHESS_IDS.next_value(),
            platform=Platform.lichess.value,
            profile_refreshed_at=func.now(),
            # Lichess players are watched by the status sweep, not the archive schedule.
            next_poll_at=text("'infinity'::timestamptz"),
            gone_at=func.now() if user.closed else None,
            **columns,
        )
        .on_conflict_do_nothing(index_elements=[Player.platform, Player.username])
        .returning(Player.player_id)
    )
    created = (await session.execute(stmt)).first() is not None
    return await get_player(session, wanted.key), created


async def _track_chesscom(
    session: AsyncSession, client: ChessComClient, username: str
) -> tuple[Player, bool]:
    profile = await fetch_profile(client, username)
    columns = profile_columns(profile)
    # A username freed by a rename may still sit on another (stale) row: release it.
    await session.execute(
        delete(Player).where(
            Player.platform == Platform.chesscom.value,
            Player.username == columns["username"],
            Player.player_id != profile.player_id,
        )
    )
    # ON CONFLICT: two concurrent requests for one new player both succeed; a renamed
    # player (same player_id, new username) keeps its subscriptions.
    stmt: Any = (
        insert(Player)
        .values(player_id=profile.player_id, profile_refreshed_at=func.now(), **columns)
        .on_conflict_do_update(
            index_elements=[Player.player_id],
            set_={**columns, "profile_refreshed_at": func.now(), "updated_at": func.now()},
        )
        # xmax is 0 only on a freshly inserted row: tells "created" from "updated".
        .returning(literal_column("(xmax = 0)"))
    )
    created = bool((await session.execute(stmt)).scalar_one())
    return await get_player(session, columns["username"]), created


async def refresh_player(session: AsyncSession, platforms: Platforms, key: str) -> Player:
    player = await find_player(session, key)
    if player is None:
        raise NotFound(f"Player '{key.strip().lower()}' is not tracked")
    if player.platform == Platform.lichess.value:
        user = await platforms.lichess_profiles().fetch(player.username)
        for column, value in lichess_columns(user).items():
            setattr(player, column, value)
        player.gone_at = datetime.now(UTC) if user.closed else None
        player.profile_refreshed_at = datetime.now(UTC)
        await session.flush()
        # Not `player.key`: the flush expired that computed column (a lazy load here).
        return await get_player(session, key_of(Platform.lichess, user.id))
    profile = await fetch_profile(platforms.chesscom, player.username)
    apply_profile(player, profile)
    await session.flush()
    return await get_player(session, profile.username)


def apply_profile(player: Player, profile: Profile) -> None:
    for key, value in profile_columns(profile).items():
        setattr(player, key, value)
    player.profile_refreshed_at = datetime.now(UTC)


async def list_players(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[Sequence[Player], int]:
    total = await session.scalar(select(func.count()).select_from(Player)) or 0
    rows = await session.execute(_with_count().order_by(Player.key).limit(limit).offset(offset))
    return [attach_count(p, c) for p, c in rows.all()], total


async def untrack_player(session: AsyncSession, key: str) -> None:
    name = key.strip().lower()
    result = await session.execute(
        delete(Player).where(Player.key == name).returning(Player.player_id)
    )
    if result.first() is None:
        raise NotFound(f"Player '{name}' is not tracked")


async def all_usernames(session: AsyncSession) -> list[str]:
    """Every tracked player's key (a Chess.com player's is its username)."""
    return list((await session.scalars(select(Player.key).order_by(Player.key))).all())


async def refresh_all_profiles(
    factory: async_sessionmaker[AsyncSession], platforms: Platforms
) -> None:
    """Refresh every profile, one short transaction each; one failure never stops the rest."""
    async with factory() as session:
        usernames = await all_usernames(session)
    for username in usernames:
        try:
            async with factory() as session, session.begin():
                await refresh_player(session, platforms, username)
        except AppError as exc:
            log.warning("refresh of %s failed: %s", username, exc.detail)
        except Exception:
            log.exception("refresh of %s failed", username)


def start_refresh_all(
    running: asyncio.Task[None] | None,
    factory: async_sessionmaker[AsyncSession],
    platforms: Platforms,
    *,
    keep: set[asyncio.Task[None]],
) -> asyncio.Task[None]:
    """The background pass over every profile: the one `running`, or a new one.

    One pass at a time, whoever asks: repeated requests cost Chess.com nothing more.
    `keep` holds a reference until the task ends (the app cancels what is left at shutdown).
    """
    if running is not None and not running.done():
        return running
    task = asyncio.create_task(refresh_all_profiles(factory, platforms))
    keep.add(task)
    task.add_done_callback(keep.discard)
    return task
