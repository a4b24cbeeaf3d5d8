"""State the sources share between workers (SPEC §10): one row each, locked to use.

* `lichess_request_budget`: every request to Lichess, the worker's and the API's, runs
  while holding this row's lock (`app.lichess.gate`): one at a time across processes,
  spaced by `LICHESS_REQUESTS_PER_SECOND`, all paused a minute after a 429. The sweep's
  cursor lives here too, so the batches of consecutive requests follow each other
  whichever worker sends them.
* `source_leases`: a periodic read that one worker does per period (Chess.com's
  streamer list): the lease is the next run time, moved forward by whoever takes it,
  plus the list's ETag for the conditional request and what the list said (a 304
  carries no body, and players tracked since still need their baseline).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, SmallInteger, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LichessRequestBudget(Base):
    __tablename__ = "lichess_request_budget"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    next_slot_at: Mapped[datetime] = mapped_column(server_default=func.now())
    paused_until: Mapped[datetime] = mapped_column(server_default=func.now())
    # The last player id the status sweep covered, and when the current sweep began.
    sweep_cursor: Mapped[int | None] = mapped_column(BigInteger)
    sweep_started_at: Mapped[datetime | None]


class SourceLease(Base):
    __tablename__ = "source_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(server_default=func.now())
    etag: Mapped[str | None] = mapped_column(String(200))
    # What the last read said, for a 304 to reuse (the streamer list: who was live).
    state: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
