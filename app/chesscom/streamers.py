"""Chess.com's streamer list `/pub/streamers` (SPEC §10, appendix): typed, and read as
"who is live on which platform".

A list that does not validate as a whole is refused as a whole (the client raises
`ChessComUnavailable`), so a garbled answer changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StreamPlatform(_Payload):
    type: str = ""
    stream_url: str | None = None
    channel_url: str | None = None
    is_live: bool = False
    is_main_live_platform: bool = False


class Streamer(_Payload):
    username: str
    avatar: str | None = None
    twitch_url: str | None = None
    url: str | None = None
    is_live: bool = False
    is_community_streamer: bool = False
    platforms: list[StreamPlatform] | None = None  # older entries lack it


class Streamers(_Payload):
    streamers: list[Streamer] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LiveStream:
    """Where a live streamer is watched: the platform's `type` and its URL."""

    type: str  # twitch, youtube, kick, ...
    url: str | None


def live_stream(entry: Streamer) -> LiveStream | None:
    """The entry's live stream, or None when it is not live.

    Live when the entry's `is_live` or any platform's is true. The URL is the main live
    platform's first, then any live platform's, then any platform's; entries without
    `platforms` give their `twitch_url`."""
    platforms = entry.platforms or []
    live = [p for p in platforms if p.is_live]
    if not (entry.is_live or live):
        return None
    ranked = sorted(live, key=lambda p: not p.is_main_live_platform) + [
        p for p in platforms if not p.is_live
    ]
    for platform in ranked:
        url = platform.stream_url or platform.channel_url
        if url:
            return LiveStream(platform.type or "stream", url)
    if entry.twitch_url:
        return LiveStream("twitch", entry.twitch_url)
    return LiveStream(ranked[0].type if ranked else "stream", None)


def live_streams(streamers: Streamers) -> dict[str, LiveStream]:
    """Lower-case username → live stream, for every live entry (the first entry of a
    name wins if the list repeats it)."""
    out: dict[str, LiveStream] = {}
    for entry in streamers.streamers:
        stream = live_stream(entry)
        if stream is not None:
            out.setdefault(entry.username.lower(), stream)
    return out
