"""Settings shared by the API and the worker (SPEC §3).

One pydantic-settings class reads every variable; a bad value stops the process
with one line naming the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import re
import secrets
import sys
from email.utils import parseaddr
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric import ec
from limits import parse_many
from pydantic import (
    AnyHttpUrl,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import __version__
from app.push.vapid import parse_private_key, stored_private_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".data"
_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "please-change"}


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    """Every knob of SPEC §3. Field names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=None, case_sensitive=False, extra="ignore", validate_default=True
    )

    app_env: Environment = Environment.development
    data_dir: Path = DEFAULT_DATA_DIR

    # Database: DATABASE_URL wins over the original deployment's POSTGRES_* set.
    database_url: str | None = None
    postgres_db: str | None = None
    postgres_host: str | None = None
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_user: str | None = None
    postgres_password: str | None = None
    postgres_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = None
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)

    host: str = Field(default="127.0.0.1", min_length=1)  # where `python -m app` listens
    port: int = Field(default=8000, ge=1, le=65535)
    # API processes `python -m app` runs on that port (uvicorn workers). With more than
    # one, RATE_LIMIT_STORAGE_URI must be shared (redis://) or each counts on its own.
    web_concurrency: int = Field(default=1, ge=1, le=64)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False

    # Chess.com
    chesscom_api_base: AnyHttpUrl = AnyHttpUrl("https://api.chess.com/pub")
    contact_email: str | None = None
    chesscom_user_agent: str | None = None
    chesscom_timeout_seconds: float = Field(default=10.0, gt=0)

    # Chess.com's streamer list (SPEC §10): read by one worker per period, in the budget.
    streamers_poll_seconds: int = Field(default=60, ge=5)

    # Lichess (SPEC §10): one request at a time across every process, at most this rate.
    lichess_api_base: AnyHttpUrl = AnyHttpUrl("https://lichess.org")
    lichess_requests_per_second: float = Field(default=1.0, gt=0, le=100)
    lichess_token: str | None = None
    lichess_timeout_seconds: float = Field(default=10.0, gt=0)
    # Every Lichess player is looked at about this often while the budget allows.
    lichess_sweep_seconds: float = Field(default=5.0, ge=1)

    # Mail
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_pool_size: int = Field(default=4, ge=1, le=64)
    email_from: str = "Chess.com Helper <noreply@localhost>"
    # Unset: http://localhost:$PORT (see `public_url`), so the links follow PORT.
    public_base_url: AnyHttpUrl | None = None

    # Security
    secret_key: str | None = None
    admin_token: str | None = None
    require_email_confirmation: bool = True
    confirmation_token_max_age_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    unsubscribe_token_max_age_seconds: int = Field(default=365 * 24 * 3600, ge=60)
    # The manage link (every email carries one) opens every control of an address.
    manage_token_max_age_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    confirmation_emails_per_address_per_day: int = Field(default=3, ge=1)
    confirmation_resend_cooldown_seconds: int = Field(default=300, ge=0)
    max_body_bytes: int = Field(default=16 * 1024, ge=256)

    # Rate limiting (limits' syntax, e.g. "5/minute" or "5/minute;100/day")
    rate_limit_enabled: bool = True
    rate_limit_anonymous: str = "5/minute"
    rate_limit_authenticated: str = "10/minute"
    rate_limit_storage_uri: str = "memory://"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Worker
    poll_interval_seconds: int = Field(default=300, ge=1)
    poll_concurrency: int = Field(default=8, ge=1, le=256)
    poll_batch_size: int = Field(default=100, ge=1)
    # Requests per second toward Chess.com for all workers together (SPEC §6).
    chesscom_requests_per_second: float = Field(default=10.0, gt=0, le=1000)
    # The longest a scheduled player waits between polls when the budget allows.
    poll_max_wait_seconds: int = Field(default=3600, ge=1)
    profile_refresh_seconds: int = Field(default=6 * 3600, ge=1)
    live_session_gap_seconds: int = Field(default=1800, ge=1)
    delivery_max_attempts: int = Field(default=5, ge=1)
    # Messages sent at once (the SMTP pool, SMTP_POOL_SIZE, holds that many connections).
    delivery_concurrency: int = Field(default=4, ge=1, le=256)
    # Outbox rows claimed (and recorded) per statement; memory is bounded by it.
    delivery_batch_size: int = Field(default=500, ge=1, le=5000)
    # How long a claimed outbox row is reserved. Renewed every third of it while the row
    # is held (waiting, being sent, not yet recorded), so a send may take longer; a
    # worker that dies leaves its rows to others within this (SPEC §7: 15 s).
    delivery_lease_seconds: int = Field(default=10, ge=1)
    # The first retry's wait; later ones follow app.backoff's schedule (5 s, 2 min,
    # 10 min, 30 min by default: five attempts span over 30 minutes, SPEC §7).
    delivery_retry_base_seconds: float = Field(default=5.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Where /healthz and /metrics of the worker listen (0.0.0.0 in a container).
    worker_metrics_host: str = Field(default="127.0.0.1", min_length=1)
    notification_retention_days: int = Field(default=90, ge=1)

    # Webhooks (SPEC §9)
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=1024)
    webhook_per_host_concurrency: int = Field(default=4, ge=1, le=64)

    # Web Push (SPEC §11): the VAPID key (PEM or raw base64url) and its contact.
    vapid_private_key: str | None = None
    vapid_subject: str | None = None
    # Telegram (SPEC §11): off (and hidden from the pages) without a bot token.
    telegram_bot_token: str | None = None
    telegram_api_base: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_anonymous", "rate_limit_authenticated")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '5/minute': {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql+asyncpg:// URL")
        return value

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_key(cls, value: str | None) -> str | None:
        if value is not None:
            parse_private_key(value)  # a bad key stops the process, naming the variable
        return value

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_contact(cls, value: str | None) -> str | None:
        if value is not None and not (
            (value.startswith("mailto:") and "@" in value) or value.startswith("https://")
        ):
            raise ValueError("must be a mailto: address or an https:// URL (RFC 8292)")
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _bot_token(cls, value: str | None) -> str | None:
        if value is not None and not _BOT_TOKEN.fullmatch(value):
            raise ValueError("must look like 123456789:ABC… (the token @BotFather gave)")
        return value

    @field_validator(
        "contact_email",
        "smtp_host",
        "admin_token",
        "secret_key",
        "vapid_private_key",
        "vapid_subject",
        "telegram_bot_token",
        "public_base_url",
        "lichess_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.app_env is Environment.production:
            if self.secret_key is None or self.secret_key.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("SECRET_KEY must be set to a real secret when APP_ENV=production")
            if len(self.secret_key) < 32:
                raise ValueError("SECRET_KEY must be at least 32 characters in production")
            if self.smtp_host is None:
                raise ValueError("SMTP_HOST must be set when APP_ENV=production")
            if self.admin_token is not None and len(self.admin_token) < 24:
                raise ValueError("ADMIN_TOKEN must be at least 24 characters in production")
            # A generated key would differ per container: every browser's subscription
            # is bound to one key, so production names it.
            if self.vapid_private_key is None:
                raise ValueError(
                    "VAPID_PRIVATE_KEY must be set when APP_ENV=production"
                    " (python -m app.cli vapid-key prints a new one)"
                )
            if self.vapid_subject is None and self.contact_email is None:
                raise ValueError(
                    "VAPID_SUBJECT (or CONTACT_EMAIL) must be set when APP_ENV=production"
                )
        return self

    # -- derived values -------------------------------------------------------------

    @property
    def effective_database_url(self) -> str | None:
        """DATABASE_URL, else one built from POSTGRES_*, else None (use the local cluster)."""
        if self.database_url:
            return self.database_url
        if self.postgres_host or self.postgres_db or self.postgres_user:
            user = quote(self.postgres_user or "postgres", safe="")
            password = (
                f":{quote(self.postgres_password, safe='')}" if self.postgres_password else ""
            )
            host = self.postgres_host or "localhost"
            db = quote(self.postgres_db or "postgres", safe="")
            url = f"postgresql+asyncpg://{user}{password}@{host}:{self.postgres_port}/{db}"
            if self.postgres_sslmode:
                url += f"?ssl={self.postgres_sslmode}"
            return url
        return None

    @property
    def user_agent(self) -> str:
        if self.chesscom_user_agent:
            return self.chesscom_user_agent
        # Chess.com refuses clients without contact details. Without CONTACT_EMAIL the
        # address this deployment sends mail from is the best contact we know (and
        # both processes warn at start).
        contact = self.contact_email or parseaddr(self.email_from)[1] or "unset"
        return f"chesscom-helper/{__version__} (self-hosted; contact: {contact})"

    @property
    def api_base(self) -> str:
        return str(self.chesscom_api_base).rstrip("/")

    @property
    def lichess_base(self) -> str:
        return str(self.lichess_api_base).rstrip("/")

    @property
    def public_url(self) -> str:
        """Where links in messages point: PUBLIC_BASE_URL, else this machine's API port."""
        if self.public_base_url is None:
            return f"http://localhost:{self.port}"
        return str(self.public_base_url).rstrip("/")

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    def resolved_vapid_key(self) -> ec.EllipticCurvePrivateKey:
        """VAPID_PRIVATE_KEY, or (outside production) one generated once under data_dir."""
        if self.vapid_private_key:
            return parse_private_key(self.vapid_private_key)
        return stored_private_key(self.data_dir)

    @property
    def vapid_contact(self) -> str:
        """The `sub` of VAPID tokens: VAPID_SUBJECT, else mailto: the operator."""
        if self.vapid_subject:
            return self.vapid_subject
        address = self.contact_email or parseaddr(self.email_from)[1] or "noreply@localhost"
        return f"mailto:{address}"

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def telegram_base(self) -> str:
        return str(self.telegram_api_base).rstrip("/")

    def resolved_secret_key(self) -> str:
        """SECRET_KEY, or (outside production) one generated once and kept under data_dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            # O_EXCL: if API and worker race at first start, both end up with one key.
            try:
                with path.open("x") as fh:
                    fh.write(key)
                path.chmod(0o600)
            except FileExistsError:
                return path.read_text().strip()
            return key


def format_settings_error(exc: ValidationError) -> str:
    """One line naming the variable(s) that failed, for operators."""
    parts = []
    for err in exc.errors():
        loc = "_".join(str(p) for p in err["loc"]).upper() or "SETTINGS"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid configuration: " + "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def load_settings() -> Settings:
    """Settings for a process entry point: exits with one clear line on a bad value."""
    try:
        return get_settings()
    except ValidationError as exc:
        print(format_settings_error(exc), file=sys.stderr)
        raise SystemExit(2) from None
