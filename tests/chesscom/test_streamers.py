"""`/pub/streamers` through the client and the simulator: ETags, 304, refusal of garbage."""

from __future__ import annotations

import pytest

from app.chesscom.client import ChessComClient, Fetched, NotModified
from app.chesscom.errors import ChessComUnavailable
from app.chesscom.streamers import live_streams
from tests.fakes.chesscom import ChessComSimulator


async def test_the_list_says_who_is_live_and_answers_304_when_unchanged(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.set_streamer("GMHikaru", live=False)
    simulator.set_streamer("Oldtimer", live=True)  # an older entry: no `platforms`
    first = await client.get_streamers()
    assert isinstance(first, Fetched) and first.etag
    assert {k: (s.type, s.url) for k, s in live_streams(first.data).items()} == {
        "oldtimer": ("twitch", "https://twitch.tv/oldtimer")
    }
    assert isinstance(await client.get_streamers(etag=first.etag), NotModified)
    simulator.start_stream("GMHikaru", "youtube")
    second = await client.get_streamers(etag=first.etag)
    assert isinstance(second, Fetched) and second.etag != first.etag
    assert live_streams(second.data)["gmhikaru"].type == "youtube"
    assert simulator.requests[-1].if_none_match == first.etag


async def test_a_list_that_does_not_parse_is_refused(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.malformed(None, endpoint="streamers")
    with pytest.raises(ChessComUnavailable):
        await client.get_streamers()
