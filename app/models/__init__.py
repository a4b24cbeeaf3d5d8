"""All ORM models, imported here so Alembic and the app see one metadata."""

from app.models.base import Base
from app.models.event import Event
from app.models.notification import NotificationLog, NotificationStatus, NotificationType
from app.models.player import Player
from app.models.preferences import SentDigest, SubscriberPreferences
from app.models.subscription import EmailSubscription
from app.models.token import ApiToken

__all__ = [
    "ApiToken",
    "Base",
    "EmailSubscription",
    "Event",
    "NotificationLog",
    "NotificationStatus",
    "NotificationType",
    "Player",
    "SentDigest",
    "SubscriberPreferences",
]
