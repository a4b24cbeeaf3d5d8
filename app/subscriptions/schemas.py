"""Subscription request and response models (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag
from pydantic.config import JsonDict

from app.schemas import Email, StrictModel, Username, with_example
from app.subscriptions.me_schemas import EventKind, Events, Filters
from app.webhooks.guard import MAX_GIVEN_URL_LENGTH, PUBLIC_URL_PATTERN

# A string format of our own: what a pattern cannot say (a point on the P-256 curve).
P256_FORMAT = "p256-public-key"


# The URL rules are the guard's (app.webhooks.guard), which says why a URL is refused;
# the pattern only tells clients (and fuzzers) the rule, pydantic does not apply it.
_URL_RULE: JsonDict = {"pattern": PUBLIC_URL_PATTERN}


class WebhookIn(StrictModel):
    url: str = Field(
        max_length=MAX_GIVEN_URL_LENGTH,
        description="An https URL: a Discord or Slack incoming webhook, or your own "
        "endpoint (its host must be public, else 422)",
        examples=["https://discord.com/api/webhooks/123456/abcdef"],
        json_schema_extra=_URL_RULE,
    )
    format: Literal["discord", "slack", "json", "ntfy"] = Field(
        description="`json` posts the signed event documented under `webhooks`; `ntfy` "
        "posts to an ntfy topic URL (`https://ntfy.sh/<topic>` or your own server): "
        "plain text with Title, Click, Tags and Priority headers",
        examples=["discord"],
    )


class PushKeysIn(StrictModel):
    p256dh: str = Field(
        pattern=r"^B[A-Za-z0-9_-]{86}$",
        description="The browser's P-256 public key: the uncompressed point (65 bytes), "
        "base64url without padding, as `PushSubscription.toJSON()` gives it. A value that "
        "is not a point on the curve is refused with 422 (format `p256-public-key`).",
        json_schema_extra={"format": P256_FORMAT},
        examples=[
            "BJxLCLEHd7zFlcBQ2Y3urUMN-N5CxqtlzuKYlRV3N4-I0YGpYvoWhhYBYfJZs7nRk1cHlgeJ9MYqmNA26srQ4fs"
        ],
    )
    auth: str = Field(
        pattern=r"^[A-Za-z0-9_-]{22}$",
        description="The 16-byte authentication secret, base64url without padding",
        examples=["MDEyMzQ1Njc4OWFiY2RlZg"],
    )


class PushIn(StrictModel):
    endpoint: str = Field(
        max_length=MAX_GIVEN_URL_LENGTH,
        description="The push service URL of the subscription (https; its host must be "
        "public, as for webhooks, else 422)",
        examples=["https://fcm.googleapis.com/fcm/send/c1KrmpTuRm0:APA91bE"],
        json_schema_extra=_URL_RULE,
    )
    keys: PushKeysIn


_USERNAME_DOC = "The player (a player key: `hikaru` or `lichess:<name>`)"
_FILTERS_DOC = (
    "Which sessions notify (default: bullet, blitz, rapid; rated or not; `classical`, a "
    "Lichess time class, when asked for). "
    "Applies to a new subscription or one awaiting confirmation."
)
_EVENTS_DOC = (
    "Which events alert: `session` and/or `stream` (default: both). "
    "Applies to a new subscription or one awaiting confirmation."
)


class _Subscribe(StrictModel):
    username: Username
    filters: Filters | None = Field(default=None, description=_FILTERS_DOC)
    events: Events | None = Field(default=None, description=_EVENTS_DOC)

    def address(self) -> tuple[str, dict[str, Any]]:
        """The channel asked for and what was given for it (its `check_address` input)."""
        raise NotImplementedError


class EmailSubscribe(_Subscribe):
    """Alerts by email, after a confirmation email (double opt-in)."""

    email: Email
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "fan@example.com", "username": "hikaru"}]},
    )

    def address(self) -> tuple[str, dict[str, Any]]:
        return "email", {"email": self.email}


class WebhookSubscribe(_Subscribe):
    """Alerts posted to a webhook (Discord, Slack, ntfy or the signed JSON event), after
    a verification message carrying the confirm link."""

    webhook: WebhookIn
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "webhook": {
                        "url": "https://discord.com/api/webhooks/123456/abcdef",
                        "format": "discord",
                    },
                    "username": "hikaru",
                }
            ]
        },
    )

    def address(self) -> tuple[str, dict[str, Any]]:
        return "webhook", self.webhook.model_dump()


class PushSubscribe(_Subscribe):
    """Web Push to a browser: `PushSubscription.toJSON()`'s endpoint and keys. Active at
    once (201): the browser's permission prompt was the consent."""

    push: PushIn

    def address(self) -> tuple[str, dict[str, Any]]:
        return "push", self.push.model_dump()


class TelegramSubscribe(_Subscribe):
    """Alerts in a Telegram chat: the answer's `link` opens the bot, and pressing Start
    there makes the subscription active (only when the site runs a Telegram bot)."""

    telegram: Literal[True]
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"telegram": True, "username": "hikaru"}]},
    )

    def address(self) -> tuple[str, dict[str, Any]]:
        return "telegram", {}


def _one_of(schema: dict[str, Any]) -> None:
    # Each choice requires its own key and allows no other's (additionalProperties:
    # false), so exactly one matches: oneOf says so to generated clients.
    if "anyOf" in schema:
        schema["oneOf"] = schema.pop("anyOf")
    schema["examples"] = [
        {"email": "fan@example.com", "username": "hikaru"},
        {
            "email": "fan@example.com",
            "username": "hikaru",
            "filters": {"time_classes": ["blitz", "rapid"], "rated_only": True},
        },
        {"email": "fan@example.com", "username": "hikaru", "events": ["stream"]},
        {
            "webhook": {
                "url": "https://discord.com/api/webhooks/123456/abcdef",
                "format": "discord",
            },
            "username": "hikaru",
        },
        {
            "webhook": {"url": "https://ntfy.sh/my_chess_alerts", "format": "ntfy"},
            "username": "hikaru",
        },
        {"telegram": True, "username": "hikaru"},
    ]


ChoiceT = TypeVar("ChoiceT", bound=_Subscribe)


class _OneChannel(RootModel[ChoiceT], Generic[ChoiceT]):
    """One subscribe request among a `oneOf` of channels; what each of them has."""

    @property
    def username(self) -> str:
        return self.root.username

    @property
    def filters(self) -> Filters | None:
        return self.root.filters

    @property
    def events(self) -> Events | None:
        return self.root.events

    def address(self) -> tuple[str, dict[str, Any]]:
        return self.root.address()


def _channel_of(body: Any) -> str | None:
    """Which channel a body asks for: the first channel key it has (a body with two is
    then refused for the other's key, a body with none for having none). Validation
    goes down that one branch, so a bad address is told as one clear error, not as one
    error per channel."""
    if isinstance(body, dict):
        return next((key for key in _CHANNEL_KEYS if key in body), None)
    return next((key for key in _CHANNEL_KEYS if getattr(body, key, None) is not None), None)


_CHANNEL_KEYS = ("email", "webhook", "push", "telegram")
_NO_CHANNEL = {
    "custom_error_type": "channel_missing",
    "custom_error_message": "Give exactly one channel: email, webhook, push or telegram",
}


class SubscribeRequest(
    _OneChannel[
        Annotated[
            Annotated[EmailSubscribe, Tag("email")]
            | Annotated[WebhookSubscribe, Tag("webhook")]
            | Annotated[PushSubscribe, Tag("push")]
            | Annotated[TelegramSubscribe, Tag("telegram")],
            Discriminator(_channel_of, **_NO_CHANNEL),
        ]
    ]
):
    """Exactly one channel: `email`, `webhook`, `push` or `telegram`."""

    model_config = ConfigDict(json_schema_extra=_one_of)


def _one_of_owned(schema: dict[str, Any]) -> None:
    if "anyOf" in schema:
        schema["oneOf"] = schema.pop("anyOf")
    schema["examples"] = [
        {
            "push": {
                "endpoint": "https://fcm.googleapis.com/fcm/send/c1KrmpTuRm0:APA91bE",
                "keys": {
                    "p256dh": "BJxLCLEHd7zFlcBQ2Y3urUMN-N5CxqtlzuKYlRV3N4-I0YGpYvoWhhYBYfJZ"
                    "s7nRk1cHlgeJ9MYqmNA26srQ4fs",
                    "auth": "MDEyMzQ1Njc4OWFiY2RlZg",
                },
            },
            "username": "hikaru",
        },
        {"telegram": True, "username": "hikaru"},
    ]


class OwnedSubscribeRequest(
    _OneChannel[
        Annotated[
            Annotated[PushSubscribe, Tag("push")] | Annotated[TelegramSubscribe, Tag("telegram")],
            Discriminator(_channel_of, **_NO_CHANNEL),
        ]
    ]
):
    """A browser (`push`) or a Telegram chat (`telegram`) of the person whose manage
    token is the bearer: the subscription then belongs to that address too."""

    model_config = ConfigDict(json_schema_extra=_one_of_owned)


class SubscriptionStatus(BaseModel):
    status: Literal["pending_confirmation", "active"] = Field(examples=["pending_confirmation"])
    secret: str | None = Field(
        default=None,
        description="Webhooks of format `json` only, shown once: the `whsec_` secret that "
        "signs every delivery (Standard Webhooks)",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    link: str | None = Field(
        default=None,
        description="Telegram only: open it and press Start in the bot to activate the "
        "subscription (valid 7 days)",
        examples=["https://t.me/chess_helper_bot?start=AAAAAAAAAAFrFjTjcujrUh2CdaM1neFJG3s6hQ"],
    )
    manage_token: str | None = Field(
        default=None,
        description="Push only: the bearer token of `/push/me`, which lists, pauses and "
        "removes this browser's push subscriptions. Keep it in the browser (the site's "
        "page keeps it in localStorage); it opens nothing else.",
        examples=["eyJzIjo0MiwiZSI6IjNmYTg1ZjY0NTQzYjEyMzQifQ.Z1R3kA.q5m0N9Jk2r7uUQ2_4o1xHc8wQbE"],
    )


class ConfirmResult(BaseModel):
    model_config = with_example({"status": "active", "username": "hikaru"})

    status: Literal["active"] = "active"
    username: str


class UnsubscribeResult(BaseModel):
    model_config = with_example({"status": "unsubscribed", "username": "hikaru"})

    status: Literal["unsubscribed"] = "unsubscribed"
    username: str


class SubscriptionOut(BaseModel):
    """Admin view of a subscription: this one carries the address."""

    model_config = with_example(
        {
            "id": 42,
            "email": "fan@example.com",
            "username": "hikaru",
            "events": ["session", "stream"],
            "is_active": True,
            "confirmed_at": "2026-11-02T18:04:11Z",
            "created_at": "2026-11-02T18:01:37Z",
            "updated_at": "2026-11-02T18:04:11Z",
            "consent_ip": "203.0.113.7",
            "consent_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
        from_attributes=True,
    )

    id: int
    channel: Literal["email", "webhook", "push", "telegram"] = "email"
    email: str | None
    webhook_url: str | None = None
    webhook_format: Literal["discord", "slack", "json", "ntfy"] | None = None
    username: str
    events: list[EventKind]
    is_active: bool
    confirmed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    consent_ip: str | None
    consent_user_agent: str | None


class EraseRequest(StrictModel):
    email: Email

    model_config = with_example({"email": "fan@example.com"})


class Accepted(BaseModel):
    model_config = with_example(
        {"status": "accepted", "detail": "If we hold data about this address, we sent it a link."}
    )

    status: Literal["accepted"] = "accepted"
    detail: str
