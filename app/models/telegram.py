"""Telegram's shared state (SPEC §11): one row for the bot, one per chat written to.

- ``telegram_bot`` (one row): the `getUpdates` long-poller's lease (only one poller runs
  across all workers: Telegram answers a second one with 409), the offset of the next
  update to read (so a poller taking over confirms what the last one handled), the
  bot's username for deep links, and the bot's send slots: the next time a message may
  go, spaced so that all workers together send at most 30 messages a second.
- ``telegram_chats``: when the next message to a chat may go (at most one a second).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, SmallInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class TelegramBot(Base):
    __tablename__ = "telegram_bot"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    next_update_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    poller: Mapped[str | None] = mapped_column(String(100))
    poller_until: Mapped[datetime | None]
    next_slot_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TelegramChat(Base):
    __tablename__ = "telegram_chats"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    next_send_at: Mapped[datetime] = mapped_column(server_default=func.now())
