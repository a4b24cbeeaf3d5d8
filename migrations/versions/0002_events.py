"""events: one row per thing that happened, payload stored once; outbox rows reference it

Existing outbox rows move their payload to one event per (player, type, event id):
`notification_logs.event_id` becomes a foreign key to `events.id`, and the old string
id becomes the event's `key`. Live-session payloads change from the per-subscriber
game summaries to the one game record type (`app.notifications.payloads.GameRecord`);
the downgrade converts them back.

Revision ID: 0002_events
Revises: 0001
Create Date: 2026-11-27 14:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_events"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDEMPOTENCY_KEY = "uq_notification_logs_subscription_id_event_id_notification_type"

# Unix seconds of an old game summary's end_time (ISO 8601, or already a number).
_END = (
    "CASE jsonb_typeof(g->'end_time') WHEN 'number' THEN (g->>'end_time')::numeric::bigint "
    "ELSE extract(epoch FROM (g->>'end_time')::timestamptz)::bigint END"
)

# Old payload (one copy per row): {username, name, started_at, games: [{url, time_class,
# time_control, opponent, opponent_rating, result, end_time}]} -> the event's LiveSession.
_UPGRADE_PAYLOAD = f"""
jsonb_build_object(
    'username', coalesce(n.payload->>'username', p.username),
    'name', n.payload->'name',
    'started_at', coalesce((n.payload->>'started_at')::bigint,
                           extract(epoch FROM n.created_at)::bigint),
    'games', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'event_id', CASE WHEN x.ord = 1 THEN n.event_id ELSE g->>'url' END,
            'url', g->>'url',
            'end_time', {_END},
            'start_time', {_END},
            'time_class', g->>'time_class',
            'time_control', coalesce(g->>'time_control', ''),
            'white', coalesce(n.payload->>'username', p.username),
            'black', coalesce(g->>'opponent', ''),
            'white_rating', NULL,
            'black_rating', g->'opponent_rating',
            'white_result', coalesce(g->>'result', ''),
            'black_result', '',
            'rated', false
        ) ORDER BY x.ord)
        FROM jsonb_array_elements(n.payload->'games') WITH ORDINALITY AS x(g, ord)
    ), '[]'::jsonb)
)"""

_UPGRADE_TIME_CLASSES = """
coalesce(ARRAY(
    SELECT DISTINCT g->>'time_class'
    FROM jsonb_array_elements(n.payload->'games') AS x(g) ORDER BY 1
), '{}')::varchar[]"""

_DOWNGRADE_PAYLOAD = """
jsonb_build_object(
    'username', e.payload->'username',
    'name', e.payload->'name',
    'started_at', e.payload->'started_at',
    'games', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'url', g->>'url',
            'time_class', g->>'time_class',
            'time_control', g->>'time_control',
            'opponent', CASE WHEN w.is_white THEN g->>'black' ELSE g->>'white' END,
            'opponent_rating', CASE WHEN w.is_white THEN g->'black_rating'
                                    ELSE g->'white_rating' END,
            'result', nullif(CASE WHEN w.is_white THEN g->>'white_result'
                                  ELSE g->>'black_result' END, ''),
            'end_time', to_char(to_timestamp((g->>'end_time')::bigint) AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
        ) ORDER BY x.ord)
        FROM jsonb_array_elements(e.payload->'games') WITH ORDINALITY AS x(g, ord),
             LATERAL (SELECT lower(g->>'white') = lower(e.payload->>'username') AS is_white) w
    ), '[]'::jsonb)
)"""


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=True),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "time_classes",
            postgresql.ARRAY(sa.String(length=16)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column(
            "rated_time_classes",
            postgresql.ARRAY(sa.String(length=16)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.player_id"],
            name=op.f("fk_events_player_id_players"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("player_id", "kind", "key", name=op.f("uq_events_player_id_kind_key")),
    )
    op.create_index("ix_events_created_at", "events", ["created_at"], unique=False)

    # One event per (player, type, old event id), its payload taken from the oldest row.
    op.execute(
        f"""
        INSERT INTO events (kind, player_id, key, payload, time_classes, occurred_at, created_at)
        SELECT DISTINCT ON (s.player_id, n.notification_type, n.event_id)
            n.notification_type, s.player_id, n.event_id,
            CASE WHEN n.notification_type = 'live_match' THEN {_UPGRADE_PAYLOAD}
                 ELSE '{{}}'::jsonb END,
            CASE WHEN n.notification_type = 'live_match' THEN {_UPGRADE_TIME_CLASSES}
                 ELSE '{{}}'::varchar[] END,
            coalesce(to_timestamp((n.payload->>'started_at')::bigint), n.created_at),
            n.created_at
        FROM notification_logs n
        JOIN email_subscriptions s ON s.id = n.subscription_id
        JOIN players p ON p.player_id = s.player_id
        ORDER BY s.player_id, n.notification_type, n.event_id, n.id
        """
    )
    op.add_column("notification_logs", sa.Column("event_ref", sa.BigInteger(), nullable=True))
    op.execute(
        """
        UPDATE notification_logs n SET event_ref = e.id
        FROM email_subscriptions s, events e
        WHERE s.id = n.subscription_id AND e.player_id = s.player_id
          AND e.kind = n.notification_type AND e.key = n.event_id
        """
    )
    op.drop_constraint(IDEMPOTENCY_KEY, "notification_logs", type_="unique")
    op.drop_column("notification_logs", "event_id")
    op.drop_column("notification_logs", "payload")
    op.alter_column("notification_logs", "event_ref", new_column_name="event_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_notification_logs_event_id_events"),
        "notification_logs",
        "events",
        ["event_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        op.f("ix_notification_logs_event_id"), "notification_logs", ["event_id"], unique=False
    )
    op.create_unique_constraint(
        IDEMPOTENCY_KEY, "notification_logs", ["subscription_id", "event_id", "notification_type"]
    )
    # Claims take due rows by (next_attempt_at, id): one fan-out gives all its rows the
    # same next_attempt_at, so the id must be in the index for a claim not to sort them.
    _due_index(["next_attempt_at", "id"])


def _due_index(columns: list[str]) -> None:
    op.drop_index(
        "ix_notification_logs_due",
        table_name="notification_logs",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_notification_logs_due",
        "notification_logs",
        columns,
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    _due_index(["next_attempt_at"])
    op.add_column("notification_logs", sa.Column("event_key", sa.String(300), nullable=True))
    op.add_column(
        "notification_logs",
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.execute(
        f"""
        UPDATE notification_logs n SET event_key = e.key,
            payload = CASE WHEN e.kind = 'live_match' THEN {_DOWNGRADE_PAYLOAD}
                           ELSE e.payload END
        FROM events e WHERE e.id = n.event_id
        """
    )
    op.drop_constraint(IDEMPOTENCY_KEY, "notification_logs", type_="unique")
    op.drop_index(op.f("ix_notification_logs_event_id"), table_name="notification_logs")
    op.drop_constraint(
        op.f("fk_notification_logs_event_id_events"), "notification_logs", type_="foreignkey"
    )
    op.drop_column("notification_logs", "event_id")
    op.alter_column("notification_logs", "event_key", new_column_name="event_id", nullable=False)
    op.create_unique_constraint(
        IDEMPOTENCY_KEY, "notification_logs", ["subscription_id", "event_id", "notification_type"]
    )
    op.drop_index("ix_events_created_at", table_name="events")
    op.drop_table("events")
