"""Request and response models of the subscriber self-service API (SPEC §4 `/me`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from app.models.subscription import DEFAULT_TIME_CLASSES, EVENTS, TIME_CLASSES, TimeClass
from app.schemas import Email, StrictModel

EventKind = Literal["session", "stream"]
assert set(EventKind.__args__) == set(EVENTS)  # type: ignore[attr-defined]
DeliveryMode = Literal["immediate", "digest"]
HourMinute = Annotated[
    str,
    Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Local time, HH:MM (24 h)"),
]

_FILTERS_EXAMPLE: dict[str, Any] = {"time_classes": ["blitz", "rapid"], "rated_only": True}


def valid_timezone(value: str) -> str:
    """An IANA time zone name that this machine's zoneinfo knows (e.g. `Europe/Berlin`)."""
    if value not in _zone_names():
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"Unknown time zone {value!r}: use an IANA name like Europe/Berlin"
            ) from exc
    return value


_ZONES: frozenset[str] = frozenset()


def _zone_names() -> frozenset[str]:
    global _ZONES
    if not _ZONES:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def zone_choices() -> list[str]:
    """The time zones offered on the manage page, sorted."""
    return sorted(_zone_names())


def _default_classes() -> list[TimeClass]:
    return list(DEFAULT_TIME_CLASSES)


def _canonical_events(value: list[EventKind]) -> list[EventKind]:
    return [e for e in ("session", "stream") if e in value]  # canonical order, no repeats


Events = Annotated[
    list[EventKind],
    Field(
        min_length=1,
        max_length=2,
        description="Which events alert: `session` (the player started a session of live "
        "games) and/or `stream` (the player went live on a stream). Default: both.",
        examples=[["session", "stream"], ["stream"]],
    ),
    AfterValidator(_canonical_events),
]


def events_of(events: Sequence[str]) -> list[EventKind]:
    """A subscription's stored `events` column as the API shows it."""
    return [e for e in ("session", "stream") if e in events] or ["session", "stream"]


class Filters(StrictModel):
    """Which sessions notify: one game must have one of the time classes (and be rated
    when `rated_only`). Daily games never notify."""

    model_config = ConfigDict(json_schema_extra={"examples": [_FILTERS_EXAMPLE]})

    time_classes: list[TimeClass] = Field(
        default_factory=lambda: _default_classes(), min_length=1, max_length=len(TIME_CLASSES)
    )
    rated_only: StrictBool = False

    @field_validator("time_classes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return [c for c in TIME_CLASSES if c in value]  # canonical order, no repeats


class FiltersPatch(StrictModel):
    """A partial change of filters: fields left out keep their value."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"rated_only": True}]})

    time_classes: list[TimeClass] | None = Field(
        default=None, min_length=1, max_length=len(TIME_CLASSES)
    )
    rated_only: StrictBool | None = None

    @field_validator("time_classes")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [c for c in TIME_CLASSES if c in value]


class QuietHours(StrictModel):
    """Local times between which immediate alerts are skipped (may wrap midnight)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"start": "22:00", "end": "07:30"}]})

    start: HourMinute
    end: HourMinute

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different times")
        return self

    def as_times(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class Delivery(BaseModel):
    mode: DeliveryMode = "immediate"
    digest_hour: int = Field(default=8, ge=0, le=23, description="Local hour of the daily digest")
    quiet_hours: QuietHours | None = None


class DeliveryPatch(StrictModel):
    """A partial change of delivery; `quiet_hours: null` switches quiet hours off."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"mode": "digest", "digest_hour": 19}]}
    )

    mode: DeliveryMode | None = None
    digest_hour: StrictInt | None = Field(default=None, ge=0, le=23)
    quiet_hours: QuietHours | None = None


_MY_SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "username": "hikaru",
    "platform": "chesscom",
    "key": "hikaru",
    "active": True,
    "confirmed": True,
    "paused": False,
    "filters": _FILTERS_EXAMPLE,
    "events": ["session", "stream"],
}


class MySubscription(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_MY_SUBSCRIPTION_EXAMPLE]})

    id: int
    username: str = Field(description="The player's username on its platform")
    platform: Literal["chesscom", "lichess"] = Field(description="Where the player plays")
    key: str = Field(
        description="The player key (`lichess:<name>` for Lichess): the API's name of the player"
    )
    active: bool = Field(description="Subscribed (not unsubscribed)")
    confirmed: bool = Field(description="The address confirmed this subscription")
    paused: bool
    filters: Filters
    events: list[EventKind] = Field(description="Which events alert: `session`, `stream`")


class Me(BaseModel):
    """Everything the service holds that the address controls."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "fan@example.com",
                    "timezone": "Europe/Berlin",
                    "delivery": {
                        "mode": "immediate",
                        "digest_hour": 8,
                        "quiet_hours": {"start": "22:00", "end": "07:30"},
                    },
                    "subscriptions": [_MY_SUBSCRIPTION_EXAMPLE],
                }
            ]
        }
    )

    email: str
    timezone: str
    delivery: Delivery
    subscriptions: list[MySubscription]


class MePatch(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Asia/Kolkata",
                    "delivery": {"mode": "digest", "digest_hour": 7, "quiet_hours": None},
                }
            ]
        }
    )

    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"])
    delivery: DeliveryPatch | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else valid_timezone(value)


class SubscriptionPatch(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"paused": True},
                {"filters": {"time_classes": ["rapid"]}},
                {"events": ["stream"]},
            ]
        }
    )

    paused: StrictBool | None = None
    filters: FiltersPatch | None = None
    events: Events | None = None


class LinkRequest(StrictModel):
    email: Email

    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "fan@example.com"}]})


def filters_of(time_classes: Sequence[str], rated_only: bool) -> Filters:
    """A subscription's stored filter columns as the API's `filters` object."""
    classes: list[TimeClass] = [c for c in TIME_CLASSES if c in time_classes]
    return Filters(time_classes=classes or _default_classes(), rated_only=rated_only)
