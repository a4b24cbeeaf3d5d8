"""poll budget: shared request slots, activity profile and poll rate per player

Revision ID: poll_budget
Revises: webhook_subscriptions
Create Date: 2026-11-27 14:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "poll_budget"
down_revision: str | None = "webhook_subscriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chesscom_request_budget",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "next_slot_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("factor", sa.Double(), server_default="1", nullable=False),
        sa.Column(
            "cut_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_chesscom_request_budget_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chesscom_request_budget")),
    )
    op.add_column(
        "players",
        sa.Column(
            "activity",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "players", sa.Column("poll_rate", sa.Double(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("players", "poll_rate")
    op.drop_column("players", "activity")
    op.drop_table("chesscom_request_budget")
