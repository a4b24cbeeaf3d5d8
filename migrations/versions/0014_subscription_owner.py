"""subscription owner: the address a push or Telegram subscription belongs to

A browser's push subscription and a Telegram chat have no email address; they belong
to a person only when that person made them from their own manage page (the address's
manage token as the bearer of `POST /me/subscriptions`). `owner_email` records that
address, so erasing the address (admin, `DELETE /me`, the erase link) erases them too.

Revision ID: subscription_owner
Revises: classical_time_class
Create Date: 2026-12-07 12:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "subscription_owner"
down_revision: str | None = "classical_time_class"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "email_subscriptions", sa.Column("owner_email", sa.String(length=320), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_email_subscriptions_owner_only_push_or_telegram"),
        "email_subscriptions",
        "owner_email IS NULL OR channel IN ('push', 'telegram')",
    )
    op.create_index(
        op.f("ix_email_subscriptions_owner_email"),
        "email_subscriptions",
        ["owner_email"],
        postgresql_where=sa.text("owner_email IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_email_subscriptions_owner_email"), table_name="email_subscriptions")
    op.drop_constraint(
        op.f("ck_email_subscriptions_owner_only_push_or_telegram"),
        "email_subscriptions",
        type_="check",
    )
    op.drop_column("email_subscriptions", "owner_email")
