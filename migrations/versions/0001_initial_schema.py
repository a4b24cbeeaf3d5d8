"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 05:04:01.187619+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "players",
        sa.Column("player_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("avatar", sa.String(length=500), nullable=True),
        sa.Column("title", sa.String(length=10), nullable=True),
        sa.Column("followers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("country", sa.String(length=10), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.Column("league", sa.String(length=50), nullable=True),
        sa.Column("last_online", sa.DateTime(timezone=True), nullable=True),
        sa.Column("joined", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_streamer", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("verified", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "streaming_platforms",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("is_playing", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "tracked_since",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("profile_etag", sa.String(length=200), nullable=True),
        sa.Column("profile_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "archive_etags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "detection_state",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "next_poll_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("poll_delay_seconds", sa.Integer(), nullable=True),
        sa.Column("last_game_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("username = lower(username)", name=op.f("ck_players_username_lower")),
        sa.PrimaryKeyConstraint("player_id", name=op.f("pk_players")),
        sa.UniqueConstraint("username", name=op.f("uq_players_username")),
    )
    op.create_index("ix_players_next_poll_at", "players", ["next_poll_at"], unique=False)
    op.create_table(
        "email_subscriptions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consent_ip", sa.String(length=64), nullable=True),
        sa.Column("consent_user_agent", sa.String(length=500), nullable=True),
        sa.Column("confirmation_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.player_id"],
            name=op.f("fk_email_subscriptions_player_id_players"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_subscriptions")),
        sa.UniqueConstraint(
            "email", "player_id", name=op.f("uq_email_subscriptions_email_player_id")
        ),
    )
    op.create_index(
        "ix_email_subscriptions_deliverable",
        "email_subscriptions",
        ["player_id"],
        unique=False,
        postgresql_where=sa.text("is_active AND confirmed_at IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_email_subscriptions_email"), "email_subscriptions", ["email"], unique=False
    )
    op.create_index(
        op.f("ix_email_subscriptions_player_id"), "email_subscriptions", ["player_id"], unique=False
    )
    op.create_table(
        "notification_logs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=False),
        sa.Column(
            "notification_type", sa.String(length=32), server_default="live_match", nullable=False
        ),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("success", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')",
            name=op.f("ck_notification_logs_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["email_subscriptions.id"],
            name=op.f("fk_notification_logs_subscription_id_email_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_logs")),
        sa.UniqueConstraint(
            "subscription_id",
            "event_id",
            "notification_type",
            name=op.f("uq_notification_logs_subscription_id_event_id_notification_type"),
        ),
    )
    op.create_index(
        "ix_notification_logs_created_at", "notification_logs", ["created_at"], unique=False
    )
    op.create_index(
        "ix_notification_logs_due",
        "notification_logs",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_notification_logs_status"), "notification_logs", ["status"], unique=False
    )
    op.create_index(
        op.f("ix_notification_logs_subscription_id"),
        "notification_logs",
        ["subscription_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_notification_logs_subscription_id"), table_name="notification_logs")
    op.drop_index(op.f("ix_notification_logs_status"), table_name="notification_logs")
    op.drop_index(
        "ix_notification_logs_due",
        table_name="notification_logs",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_notification_logs_created_at", table_name="notification_logs")
    op.drop_table("notification_logs")
    op.drop_index(op.f("ix_email_subscriptions_player_id"), table_name="email_subscriptions")
    op.drop_index(op.f("ix_email_subscriptions_email"), table_name="email_subscriptions")
    op.drop_index(
        "ix_email_subscriptions_deliverable",
        table_name="email_subscriptions",
        postgresql_where=sa.text("is_active AND confirmed_at IS NOT NULL"),
    )
    op.drop_table("email_subscriptions")
    op.drop_index("ix_players_next_poll_at", table_name="players")
    op.drop_table("players")
    op.drop_table("api_tokens")
