"""push and telegram subscriptions: endpoint and keys, chat id, the bot's shared state

Revision ID: push_and_telegram
Revises: player_pages
Create Date: 2026-12-07 05:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "push_and_telegram"
down_revision: str | None = "player_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "email_subscriptions"
CHECK = "ck_email_subscriptions_one_recipient"

ONE_RECIPIENT = (
    "(channel = 'email' AND email IS NOT NULL AND webhook_url IS NULL"
    " AND webhook_format IS NULL AND webhook_secret IS NULL"
    " AND push_endpoint IS NULL AND telegram_chat_id IS NULL)"
    " OR (channel = 'webhook' AND email IS NULL AND webhook_url IS NOT NULL"
    " AND webhook_format IN ('discord', 'slack', 'json', 'ntfy')"
    " AND (webhook_format <> 'json' OR webhook_secret IS NOT NULL)"
    " AND push_endpoint IS NULL AND telegram_chat_id IS NULL)"
    " OR (channel = 'push' AND email IS NULL AND webhook_url IS NULL"
    " AND push_endpoint IS NOT NULL AND push_p256dh IS NOT NULL AND push_auth IS NOT NULL"
    " AND telegram_chat_id IS NULL)"
    " OR (channel = 'telegram' AND email IS NULL AND webhook_url IS NULL"
    " AND push_endpoint IS NULL)"
)
# 0005's rule, restored by the downgrade.
EMAIL_OR_WEBHOOK = (
    "(channel = 'email' AND email IS NOT NULL AND webhook_url IS NULL"
    " AND webhook_format IS NULL AND webhook_secret IS NULL)"
    " OR (channel = 'webhook' AND email IS NULL AND webhook_url IS NOT NULL"
    " AND webhook_format IN ('discord', 'slack', 'json')"
    " AND (webhook_format <> 'json' OR webhook_secret IS NOT NULL))"
)


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("push_endpoint", sa.String(length=2000), nullable=True))
    op.add_column(TABLE, sa.Column("push_p256dh", sa.String(length=100), nullable=True))
    op.add_column(TABLE, sa.Column("push_auth", sa.String(length=32), nullable=True))
    op.add_column(TABLE, sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True))
    op.drop_constraint(op.f(CHECK), TABLE, type_="check")
    op.create_check_constraint(op.f(CHECK), TABLE, ONE_RECIPIENT)
    op.create_unique_constraint(
        op.f("uq_email_subscriptions_push_endpoint_player_id"),
        TABLE,
        ["push_endpoint", "player_id"],
    )
    op.create_unique_constraint(
        op.f("uq_email_subscriptions_telegram_chat_id_player_id"),
        TABLE,
        ["telegram_chat_id", "player_id"],
    )
    op.create_table(
        "telegram_bot",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("next_update_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("poller", sa.String(length=100), nullable=True),
        sa.Column("poller_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "next_slot_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_telegram_bot_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_bot")),
    )
    op.create_table(
        "telegram_chats",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "next_send_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_telegram_chats")),
    )


def downgrade() -> None:
    op.drop_table("telegram_chats")
    op.drop_table("telegram_bot")
    # Push and Telegram rows cannot exist without these columns: they go (with their
    # logs), and so do ntfy webhooks, a format the older rule does not know.
    op.execute(
        f"DELETE FROM {TABLE} WHERE channel IN ('push', 'telegram')"
        " OR (channel = 'webhook' AND webhook_format = 'ntfy')"
    )
    op.drop_constraint(
        op.f("uq_email_subscriptions_telegram_chat_id_player_id"), TABLE, type_="unique"
    )
    op.drop_constraint(
        op.f("uq_email_subscriptions_push_endpoint_player_id"), TABLE, type_="unique"
    )
    op.drop_constraint(op.f(CHECK), TABLE, type_="check")
    op.create_check_constraint(op.f(CHECK), TABLE, EMAIL_OR_WEBHOOK)
    op.drop_column(TABLE, "telegram_chat_id")
    op.drop_column(TABLE, "push_auth")
    op.drop_column(TABLE, "push_p256dh")
    op.drop_column(TABLE, "push_endpoint")
