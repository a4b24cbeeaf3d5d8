"""players on two platforms: (platform, username), a player key, stream and game state;
the Lichess request budget and the source leases (SPEC §5, §10)

Every existing player becomes a Chess.com player and keeps its `player_id`, so every
foreign key (subscriptions, events, outbox rows) and every poll state stays as it was.
`player_id` stays the primary key: Chess.com's id for Chess.com players, and for
Lichess players (who have none) a descending sequence (-1, -2, ...), a range Chess.com
never uses; a check constraint keeps the two apart. Downgrading deletes the Lichess
players (the old schema cannot hold them) with what belongs to them.

Revision ID: players_platform
Revises: push_and_telegram
Create Date: 2026-12-07 04:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "players_platform"
down_revision: str | None = "push_and_telegram"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_EXPRESSION = (
    "CASE WHEN platform = 'chesscom' THEN username ELSE platform || ':' || username END"
)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE players_lichess_id_seq INCREMENT BY -1 START WITH -1 MAXVALUE -1")
    op.add_column(
        "players",
        sa.Column("platform", sa.String(16), server_default="chesscom", nullable=False),
    )
    op.add_column(
        "players",
        sa.Column("key", sa.String(64), sa.Computed(KEY_EXPRESSION, persisted=True)),
    )
    op.add_column(
        "players",
        sa.Column("is_streaming", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column("players", sa.Column("stream_url", sa.String(500), nullable=True))
    for column in ("stream_started_at", "stream_seen_at", "stream_checked_at"):
        op.add_column("players", sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.add_column("players", sa.Column("current_game_url", sa.String(200), nullable=True))
    op.create_check_constraint(
        op.f("ck_players_platform_known"), "players", "platform IN ('chesscom', 'lichess')"
    )
    op.create_check_constraint(
        op.f("ck_players_platform_id_range"), "players", "(platform = 'chesscom') = (player_id > 0)"
    )
    op.drop_constraint(op.f("uq_players_username"), "players", type_="unique")
    op.create_unique_constraint(
        op.f("uq_players_platform_username"), "players", ["platform", "username"]
    )
    op.create_index(op.f("ix_players_key"), "players", ["key"], unique=True)

    op.create_table(
        "lichess_request_budget",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "next_slot_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "paused_until",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sweep_cursor", sa.BigInteger(), nullable=True),
        sa.Column("sweep_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_lichess_request_budget_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lichess_request_budget")),
    )
    op.create_table(
        "source_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column(
            "next_run_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("etag", sa.String(200), nullable=True),
        sa.Column(
            "state",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_source_leases")),
    )


def downgrade() -> None:
    op.drop_table("source_leases")
    op.drop_table("lichess_request_budget")
    # The old schema knows Chess.com players only.
    op.execute("DELETE FROM players WHERE platform <> 'chesscom'")
    op.drop_index(op.f("ix_players_key"), table_name="players")
    op.drop_constraint(op.f("uq_players_platform_username"), "players", type_="unique")
    op.create_unique_constraint(op.f("uq_players_username"), "players", ["username"])
    op.drop_constraint(op.f("ck_players_platform_id_range"), "players", type_="check")
    op.drop_constraint(op.f("ck_players_platform_known"), "players", type_="check")
    for column in (
        "current_game_url",
        "stream_checked_at",
        "stream_seen_at",
        "stream_started_at",
        "stream_url",
        "is_streaming",
        "key",
        "platform",
    ):
        op.drop_column("players", column)
    op.execute("DROP SEQUENCE players_lichess_id_seq")
