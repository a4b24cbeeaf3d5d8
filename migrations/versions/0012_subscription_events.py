"""subscription events: which kinds of event alert (email_subscriptions.events)

Revision ID: subscription_events
Revises: players_platform
Create Date: 2026-12-07 05:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "subscription_events"
down_revision: str | None = "players_platform"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing subscription keeps hearing about everything (the default: both).
    op.add_column(
        "email_subscriptions",
        sa.Column(
            "events",
            postgresql.ARRAY(sa.String(length=16)),
            server_default=sa.text("'{session,stream}'::varchar[]"),
            nullable=False,
        ),
    )
    op.create_check_constraint(
        op.f("ck_email_subscriptions_events_valid"),
        "email_subscriptions",
        "cardinality(events) >= 1 AND events <@ ARRAY['session', 'stream']::varchar[]",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_email_subscriptions_events_valid"), "email_subscriptions", type_="check"
    )
    op.drop_column("email_subscriptions", "events")
