"""The home page's lists (SPEC §12): who is live now, and the most followed tracked players."""

from __future__ import annotations

from typing import Any

from app.db import ReadPool
from app.player_pages import queries
from app.player_pages.views import listed


async def home_lists(pool: ReadPool) -> dict[str, Any]:
    """`live` and `top` for home.html (players in the order to show them)."""
    return {
        "live": listed(await queries.live_now(pool)),
        "top": listed(await queries.most_followed(pool)),
    }
