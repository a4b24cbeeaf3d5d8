"""`async with` for the long-lived clients that own connections (Chess.com, mailers)."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class AsyncClosing(Protocol):
    """Implement `aclose`; `async with obj:` then closes it on the way out."""

    async def aclose(self) -> None:
        """Release connections; the object must not be used afterwards."""
        ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
