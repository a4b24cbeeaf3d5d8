"""The request budget toward Chess.com shared by every worker (SPEC §6): one row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Double, SmallInteger, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class RequestBudget(Base):
    """State of worker.schedule.Slots: the next free request slot and the rate cut."""

    __tablename__ = "chesscom_request_budget"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    next_slot_at: Mapped[datetime] = mapped_column(server_default=func.now())
    factor: Mapped[float] = mapped_column(Double, default=1.0, server_default="1")
    cut_at: Mapped[datetime] = mapped_column(server_default=func.now())
