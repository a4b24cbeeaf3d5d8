"""webhook subscriptions: a channel column, webhook URL/format/secret, email nullable

Revision ID: webhook_subscriptions
Revises: quiet_hours_and_digest_statuses
Create Date: 2026-11-27 14:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "webhook_subscriptions"
down_revision: str | None = "quiet_hours_and_digest_statuses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "email_subscriptions"
ONE_RECIPIENT = (
    "(channel = 'email' AND email IS NOT NULL AND webhook_url IS NULL"
    " AND webhook_format IS NULL AND webhook_secret IS NULL)"
    " OR (channel = 'webhook' AND email IS NULL AND webhook_url IS NOT NULL"
    " AND webhook_format IN ('discord', 'slack', 'json')"
    " AND (webhook_format <> 'json' OR webhook_secret IS NOT NULL))"
)


def upgrade() -> None:
    op.add_column(
        TABLE, sa.Column("channel", sa.String(length=16), server_default="email", nullable=False)
    )
    op.add_column(TABLE, sa.Column("webhook_url", sa.String(length=2000), nullable=True))
    op.add_column(TABLE, sa.Column("webhook_format", sa.String(length=16), nullable=True))
    op.add_column(TABLE, sa.Column("webhook_secret", sa.String(length=100), nullable=True))
    op.alter_column(TABLE, "email", existing_type=sa.String(length=320), nullable=True)
    op.create_check_constraint(op.f("ck_email_subscriptions_one_recipient"), TABLE, ONE_RECIPIENT)
    op.create_unique_constraint(
        op.f("uq_email_subscriptions_webhook_url_player_id"), TABLE, ["webhook_url", "player_id"]
    )
    op.create_index(op.f("ix_email_subscriptions_webhook_url"), TABLE, ["webhook_url"])


def downgrade() -> None:
    # Webhook rows cannot exist without these columns: they go (with their logs).
    op.execute(f"DELETE FROM {TABLE} WHERE channel = 'webhook'")
    op.drop_index(op.f("ix_email_subscriptions_webhook_url"), table_name=TABLE)
    op.drop_constraint(op.f("uq_email_subscriptions_webhook_url_player_id"), TABLE, type_="unique")
    op.drop_constraint(op.f("ck_email_subscriptions_one_recipient"), TABLE, type_="check")
    op.alter_column(TABLE, "email", existing_type=sa.String(length=320), nullable=False)
    op.drop_column(TABLE, "webhook_secret")
    op.drop_column(TABLE, "webhook_format")
    op.drop_column(TABLE, "webhook_url")
    op.drop_column(TABLE, "channel")
