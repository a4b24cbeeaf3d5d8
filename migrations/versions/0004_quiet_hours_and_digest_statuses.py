"""notification statuses for quiet hours and digests (issue 12)

Revision ID: quiet_hours_and_digest_statuses
Revises: subscriber_preferences
Create Date: 2026-11-27 15:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "quiet_hours_and_digest_statuses"
down_revision: str | None = "subscriber_preferences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_notification_logs_status_valid"


def upgrade() -> None:
    op.drop_constraint(op.f(NAME), "notification_logs", type_="check")
    op.create_check_constraint(
        op.f(NAME),
        "notification_logs",
        "status IN ('pending', 'sent', 'failed', 'skipped', 'held', 'digested')",
    )


def downgrade() -> None:
    # Rows in the new states cannot be represented before: they are over (skipped,
    # digested) or waiting for a digest that the old code would never send.
    op.execute("DELETE FROM notification_logs WHERE status IN ('skipped', 'held', 'digested')")
    op.drop_constraint(op.f(NAME), "notification_logs", type_="check")
    op.create_check_constraint(
        op.f(NAME), "notification_logs", "status IN ('pending', 'sent', 'failed')"
    )
