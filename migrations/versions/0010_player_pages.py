"""player pages: an index for a player's timeline (sessions, streams), one for followers

The page, the feed and the badge of a player read their newest sessions and streams
(issue 21); other events carry the player id too (a confirmation per subscriber), so the
index covers only the two timeline kinds, and it carries the id and created_at of each
entry: a conditional request for a feed is answered from the index alone. The home page
lists the most followed players.

Revision ID: player_pages
Revises: webhook_manage_links_since
Create Date: 2026-12-07 05:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "player_pages"
down_revision: str | None = "webhook_manage_links_since"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_player_timeline",
        "events",
        ["player_id", sa.text("occurred_at DESC")],
        postgresql_include=["id", "created_at"],
        postgresql_where=sa.text("kind IN ('live_match', 'stream_started')"),
    )
    op.create_index("ix_players_followers", "players", [sa.text("followers DESC")])


def downgrade() -> None:
    op.drop_index("ix_players_followers", table_name="players")
    op.drop_index("ix_events_player_timeline", table_name="events")
