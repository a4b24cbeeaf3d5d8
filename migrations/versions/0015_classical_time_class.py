"""classical time class: Lichess's classical games can be chosen in filters (SPEC §10)

Revision ID: classical_time_class
Revises: subscription_events
Create Date: 2026-12-07 12:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "classical_time_class"
down_revision: str | None = "subscription_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_email_subscriptions_time_classes_valid"
_WITH_CLASSICAL = (
    "cardinality(time_classes) >= 1 "
    "AND time_classes <@ ARRAY['bullet', 'blitz', 'rapid', 'classical']::varchar[]"
)
_WITHOUT = (
    "cardinality(time_classes) >= 1 "
    "AND time_classes <@ ARRAY['bullet', 'blitz', 'rapid']::varchar[]"
)


def upgrade() -> None:
    # Widening the set: every stored row passes the new check.
    op.drop_constraint(op.f(_NAME), "email_subscriptions", type_="check")
    op.create_check_constraint(op.f(_NAME), "email_subscriptions", _WITH_CLASSICAL)


def downgrade() -> None:
    # Back to three classes: a subscription that chose only classical would violate the
    # old check, so it falls back to the default; classical is dropped from the others.
    op.execute(
        "UPDATE email_subscriptions SET time_classes = CASE "
        "WHEN time_classes <@ ARRAY['classical']::varchar[] "
        "THEN ARRAY['bullet', 'blitz', 'rapid']::varchar[] "
        "ELSE array_remove(time_classes, 'classical') END "
        "WHERE 'classical' = ANY(time_classes)"
    )
    op.drop_constraint(op.f(_NAME), "email_subscriptions", type_="check")
    op.create_check_constraint(op.f(_NAME), "email_subscriptions", _WITHOUT)
