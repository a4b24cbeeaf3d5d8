"""Every link in a message points where the API listens (SPEC §3, issue 18 item 8):
without PUBLIC_BASE_URL it is http://localhost:$PORT, so `PORT=8100` alone moves them."""

from __future__ import annotations

import re

from app.config import Settings
from tests.worker.conftest import NOW, WorkerFactory, World

# A URL in text or a header; a trailing ")" or "." is the sentence's, not the link's.
_LINK = re.compile(r"https?://[^\s\"'<>()]*[^\s\"'<>().,;]")
_OURS = re.compile(r"http://localhost:8100(/|$)")


def texts(world: World, email: str) -> list[str]:
    """The decoded headers and text parts of every message sent to `email`."""
    found = []
    for received in world.smtp.messages:
        if email in received.rcpt_tos:
            message = received.message
            found.extend(str(value) for value in message.values())
            found.extend(
                part.get_content()
                for part in message.walk()
                if part.get_content_maintype() == "text"
            )
    return found


async def test_without_public_base_url_every_link_of_an_alert_follows_port(
    world: World, make_worker: WorkerFactory, worker_settings: Settings
) -> None:
    settings = worker_settings.model_copy(update={"port": 8100, "public_base_url": None})
    await world.followed("hikaru", "fan@example.com")
    world.sim.add_game("hikaru", end_time=NOW - 60)
    await world.make_due()
    await make_worker(settings).run_once()

    assert world.sent_to("fan@example.com"), "the alert went out"
    links = [link for text in texts(world, "fan@example.com") for link in _LINK.findall(text)]
    ours = [link for link in links if "chess.com" not in link and "chesscomfiles" not in link]
    assert any(link.startswith("http://localhost:8100/manage?token=") for link in ours), links
    assert any(link.startswith("http://localhost:8100/api/v1/unsubscribe?") for link in ours)
    strays = [link for link in ours if not _OURS.match(link)]
    assert strays == []
