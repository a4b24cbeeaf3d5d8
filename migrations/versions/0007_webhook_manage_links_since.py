"""webhook manage links: revoked by replacing them (email_subscriptions.manage_links_since)

Revision ID: webhook_manage_links_since
Revises: poll_budget
Create Date: 2026-11-27 17:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "webhook_manage_links_since"
down_revision: str | None = "poll_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "email_subscriptions",
        sa.Column("manage_links_since", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("email_subscriptions", "manage_links_since")
