"""The source interface the worker's runner drives (issue 18 item 2).

A source owns what is particular to its signal: its request budget, its conditional
requests, its baseline rule, its state. It writes events with
:mod:`worker.sources.events` in the transaction that records what it saw; the one
fan-out and the one delivery pipeline do the rest. The runner runs every source the
same way: :meth:`Source.step` in a loop until the stop, a failing step retried with a
growing pause while the other sources and delivery go on.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar

log = logging.getLogger(__name__)


class Source(ABC):
    """One watched signal."""

    #: Names its loop in logs, health and metrics.
    name: ClassVar[str]

    @abstractmethod
    async def step(self) -> float:
        """Do the next unit of work (one claimed batch, one read) and return how many
        seconds to wait before the next (0: at once). Raises only for failures the
        source cannot handle itself (the database down): the runner backs off."""

    async def run_once(self) -> None:
        """`python -m worker --once`: one pass over everything the source watches."""
        await self.step()

    async def settle(self) -> None:
        """Wait for work a step left running (answers still being recorded): the runner
        calls it when the source's loop has stopped. Most sources leave none."""
        return
