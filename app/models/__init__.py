"""All ORM models, imported here so Alembic and the app see one metadata."""

from app.models.base import Base
from app.models.budget import RequestBudget
from app.models.event import Event
from app.models.notification import NotificationLog, NotificationStatus, NotificationType
from app.models.player import Player
from app.models.preferences import SentDigest, SubscriberPreferences
from app.models.sources import LichessRequestBudget, SourceLease
from app.models.subscription import WEBHOOK_FORMATS, Channel, EmailSubscription, Subscription
from app.models.telegram import TelegramBot, TelegramChat
from app.models.token import ApiToken

__all__ = [
    "WEBHOOK_FORMATS",
    "ApiToken",
    "Base",
    "Channel",
    "EmailSubscription",
    "Event",
    "LichessRequestBudget",
    "NotificationLog",
    "NotificationStatus",
    "NotificationType",
    "Player",
    "RequestBudget",
    "SentDigest",
    "SourceLease",
    "SubscriberPreferences",
    "Subscription",
    "TelegramBot",
    "TelegramChat",
]
