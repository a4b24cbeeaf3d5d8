"""subscriber preferences, subscription filters and pause (issue 12)

Revision ID: subscriber_preferences
Revises: 0002_events
Create Date: 2026-11-27 14:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "subscriber_preferences"
down_revision: str | None = "0002_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "email_subscriptions",
        sa.Column("paused", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column(
        "email_subscriptions",
        sa.Column(
            "time_classes",
            postgresql.ARRAY(sa.String(length=16)),
            server_default=sa.text("'{bullet,blitz,rapid}'::varchar[]"),
            nullable=False,
        ),
    )
    op.add_column(
        "email_subscriptions",
        sa.Column("rated_only", sa.Boolean(), server_default="false", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_email_subscriptions_time_classes_valid"),
        "email_subscriptions",
        "cardinality(time_classes) >= 1 "
        "AND time_classes <@ ARRAY['bullet', 'blitz', 'rapid']::varchar[]",
    )
    op.create_table(
        "subscriber_preferences",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column(
            "delivery_mode", sa.String(length=16), server_default="immediate", nullable=False
        ),
        sa.Column("digest_hour", sa.SmallInteger(), server_default="8", nullable=False),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("next_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint(
            "delivery_mode IN ('immediate', 'digest')",
            name=op.f("ck_subscriber_preferences_delivery_mode_valid"),
        ),
        sa.CheckConstraint(
            "digest_hour BETWEEN 0 AND 23",
            name=op.f("ck_subscriber_preferences_digest_hour_valid"),
        ),
        sa.CheckConstraint(
            "(quiet_start IS NULL) = (quiet_end IS NULL)",
            name=op.f("ck_subscriber_preferences_quiet_hours_complete"),
        ),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_subscriber_preferences")),
    )
    op.create_index(
        "ix_subscriber_preferences_digest_due",
        "subscriber_preferences",
        ["next_digest_at"],
        unique=False,
        postgresql_where=sa.text("delivery_mode = 'digest'"),
    )
    op.create_table(
        "sent_digests",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("email", "local_date", name=op.f("pk_sent_digests")),
    )


def downgrade() -> None:
    op.drop_table("sent_digests")
    op.drop_index(
        "ix_subscriber_preferences_digest_due",
        table_name="subscriber_preferences",
        postgresql_where=sa.text("delivery_mode = 'digest'"),
    )
    op.drop_table("subscriber_preferences")
    op.drop_constraint(
        op.f("ck_email_subscriptions_time_classes_valid"), "email_subscriptions", type_="check"
    )
    op.drop_column("email_subscriptions", "rated_only")
    op.drop_column("email_subscriptions", "time_classes")
    op.drop_column("email_subscriptions", "paused")
