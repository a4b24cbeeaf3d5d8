"""Settings (SPEC §3): defaults, the database URL, and one clear line for a bad value."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.config import Environment, Settings, get_settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "s3cr3t-" + "k" * 40
# A VAPID private key (RFC 8292), its raw 32 bytes base64url-encoded (SPEC §3).
GOOD_VAPID_KEY = "AGQ1VPz0GuNnuaOuxkbU4dGJ5dQeGCqh2gjHnsbz-mQ"


def _is_setting(name: str) -> bool:
    return name.lower() in Settings.model_fields


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No variable from the developer's shell (or make test's DATABASE_URL) leaks in."""
    for name in list(os.environ):
        if _is_setting(name):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def settings_env(**values: str) -> dict[str, str]:
    """The current (cleaned) environment plus `values`, for a child process."""
    env = {k: v for k, v in os.environ.items() if not _is_setting(k)}
    env.update(values)
    return env


def run_load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What every entry point (`python -m worker`, the API, alembic) does first."""
    return subprocess.run(
        [sys.executable, "-c", "from app.config import load_settings; load_settings()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- defaults ---------------------------------------------------------------------------


def test_defaults_match_the_spec() -> None:
    s = Settings()
    assert s.port == 8000
    assert s.poll_interval_seconds == 300
    assert s.poll_concurrency == 8
    assert s.live_session_gap_seconds == 1800
    assert s.rate_limit_enabled is True
    assert s.rate_limit_anonymous == "5/minute"
    assert s.rate_limit_authenticated == "10/minute"
    assert s.rate_limit_storage_uri == "memory://"
    assert s.require_email_confirmation is True
    assert s.email_from == "Chess.com Helper <noreply@localhost>"
    assert s.public_url == "http://localhost:8000"
    assert s.api_base == "https://api.chess.com/pub"
    assert s.smtp_host is None  # no SMTP: emails become .eml files
    assert s.contact_email is None
    assert s.admin_token is None
    assert s.app_env is Environment.development
    assert s.effective_database_url is None  # the local cluster is used


def test_public_base_url_follows_port_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEC §3: links point at http://localhost:$PORT unless PUBLIC_BASE_URL says where."""
    monkeypatch.setenv("PORT", "8100")
    assert Settings().public_url == "http://localhost:8100"
    monkeypatch.setenv("PUBLIC_BASE_URL", "  ")  # blank, as an unset compose variable
    assert Settings().public_url == "http://localhost:8100"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://alerts.example.org/")
    assert Settings().public_url == "https://alerts.example.org"


def test_user_agent_carries_the_contact_email(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACT_EMAIL", "ops@example.com")
    assert "contact: ops@example.com" in Settings().user_agent
    monkeypatch.setenv("CHESSCOM_USER_AGENT", "mybot/2.0 (contact: me@example.org)")
    assert Settings().user_agent == "mybot/2.0 (contact: me@example.org)"


def test_without_contact_email_the_sender_address_is_the_contact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "contact: noreply@localhost)" in Settings().user_agent
    monkeypatch.setenv("EMAIL_FROM", "Chess alerts <alerts@club.example>")
    assert "contact: alerts@club.example)" in Settings().user_agent


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("PORT", "9000", "port", 9000),
        ("POLL_INTERVAL_SECONDS", "60", "poll_interval_seconds", 60),
        ("POLL_CONCURRENCY", "2", "poll_concurrency", 2),
        ("LIVE_SESSION_GAP_SECONDS", "600", "live_session_gap_seconds", 600),
        ("REQUIRE_EMAIL_CONFIRMATION", "false", "require_email_confirmation", False),
        ("RATE_LIMIT_ENABLED", "false", "rate_limit_enabled", False),
        ("RATE_LIMIT_ANONYMOUS", "5/minute;100/day", "rate_limit_anonymous", "5/minute;100/day"),
        ("SMTP_TLS", "starttls", "smtp_tls", "starttls"),
        ("SMTP_PORT", "2525", "smtp_port", 2525),
        (
            "RATE_LIMIT_STORAGE_URI",
            "redis://redis:6379/0",
            "rate_limit_storage_uri",
            "redis://redis:6379/0",
        ),
    ],
)
def test_environment_variables_are_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, raw)
    assert getattr(Settings(), field) == expected


def test_blank_optional_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # `SMTP_HOST=${SMTP_HOST:-}` in a compose file must not mean "an SMTP server named ''".
    for name in ("SMTP_HOST", "CONTACT_EMAIL", "ADMIN_TOKEN", "SECRET_KEY"):
        monkeypatch.setenv(name, "  ")
    s = Settings()
    assert (s.smtp_host, s.contact_email, s.admin_token, s.secret_key) == (None, None, None, None)


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("PORT", "9100")
    assert get_settings().port == 8000
    get_settings.cache_clear()
    assert get_settings().port == 9100


# -- the database URL -------------------------------------------------------------------


def test_database_url_wins_over_postgres_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app:pw@primary:5432/chess")
    monkeypatch.setenv("POSTGRES_HOST", "other-host")
    monkeypatch.setenv("POSTGRES_DB", "otherdb")
    monkeypatch.setenv("POSTGRES_USER", "otheruser")
    assert Settings().effective_database_url == "postgresql+asyncpg://app:pw@primary:5432/chess"


def test_postgres_variables_alone_build_an_escaped_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_HOST", "db.internal")
    monkeypatch.setenv("POSTGRES_PORT", "6543")
    monkeypatch.setenv("POSTGRES_DB", "chess db")
    monkeypatch.setenv("POSTGRES_USER", "ch@user")
    monkeypatch.setenv("POSTGRES_PASSWORD", "p@ss:w/rd%?#")
    monkeypatch.setenv("POSTGRES_SSLMODE", "require")
    url = Settings().effective_database_url
    assert url is not None
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+asyncpg"
    assert parsed.host == "db.internal"
    assert parsed.port == 6543
    assert parsed.database == "chess db"
    assert parsed.username == "ch@user"
    assert parsed.password == "p@ss:w/rd%?#"
    assert dict(parsed.query) == {"ssl": "require"}


def test_postgres_variables_without_password_or_sslmode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_HOST", "db")
    monkeypatch.setenv("POSTGRES_DB", "chess")
    monkeypatch.setenv("POSTGRES_USER", "app")
    assert Settings().effective_database_url == "postgresql+asyncpg://app@db:5432/chess"


@pytest.mark.parametrize(
    "raw",
    ["postgresql://app:pw@db:5432/chess", "postgres://app:pw@db:5432/chess"],
)
def test_sync_postgres_urls_are_converted_to_asyncpg(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", raw)
    assert Settings().effective_database_url == "postgresql+asyncpg://app:pw@db:5432/chess"


def test_blank_database_url_falls_back_to_postgres_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("POSTGRES_HOST", "db")
    monkeypatch.setenv("POSTGRES_USER", "app")
    assert Settings().effective_database_url == "postgresql+asyncpg://app@db:5432/postgres"


# -- a bad value stops the process with one line ------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POLL_CONCURRENCY", "abc"),
        ("POLL_INTERVAL_SECONDS", "0"),
        ("SMTP_TLS", "bogus"),
        ("RATE_LIMIT_ANONYMOUS", "lots"),
        ("RATE_LIMIT_AUTHENTICATED", "ten a minute"),
        ("REQUIRE_EMAIL_CONFIRMATION", "maybe"),
        ("PORT", "70000"),
        ("DATABASE_URL", "mysql://app:pw@db/chess"),
        ("PUBLIC_BASE_URL", "not a url"),
        ("POSTGRES_SSLMODE", "sometimes"),
        ("VAPID_PRIVATE_KEY", "not-a-key"),
        ("VAPID_SUBJECT", "ops@example.com"),
        ("TELEGRAM_BOT_TOKEN", "abc"),
        ("TELEGRAM_API_BASE", "nope"),
    ],
)
def test_a_bad_value_exits_2_with_one_line_naming_it(variable: str, value: str) -> None:
    result = run_load_settings(settings_env(**{variable: value}))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_good_settings_load_silently() -> None:
    result = run_load_settings(settings_env(POLL_CONCURRENCY="4", SMTP_TLS="tls"))
    assert (result.returncode, result.stderr) == (0, "")


def test_load_settings_in_process_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLL_CONCURRENCY", "abc")
    with pytest.raises(SystemExit) as exc_info:
        load_settings()
    assert exc_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "POLL_CONCURRENCY" in err


# -- production ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SMTP_HOST": "mail"}, "SECRET_KEY"),
        ({"SMTP_HOST": "mail", "SECRET_KEY": "changeme"}, "SECRET_KEY"),
        ({"SMTP_HOST": "mail", "SECRET_KEY": "too-short"}, "SECRET_KEY"),
        ({"SECRET_KEY": GOOD_SECRET}, "SMTP_HOST"),
        ({"SECRET_KEY": GOOD_SECRET, "SMTP_HOST": "mail", "ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"),
        ({"SECRET_KEY": GOOD_SECRET, "SMTP_HOST": "mail"}, "VAPID_PRIVATE_KEY"),
        (
            {"SECRET_KEY": GOOD_SECRET, "SMTP_HOST": "mail", "VAPID_PRIVATE_KEY": GOOD_VAPID_KEY},
            "VAPID_SUBJECT",
        ),
    ],
)
def test_production_refuses_missing_or_placeholder_secrets(env: dict[str, str], named: str) -> None:
    result = run_load_settings(settings_env(APP_ENV="production", **env))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "production" in lines[0]


def test_production_with_real_secrets_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("ADMIN_TOKEN", "a" * 32)
    monkeypatch.setenv("VAPID_PRIVATE_KEY", GOOD_VAPID_KEY)
    monkeypatch.setenv("VAPID_SUBJECT", "mailto:ops@example.com")
    s = Settings()
    assert s.app_env is Environment.production
    assert s.resolved_secret_key() == GOOD_SECRET


# -- the secret key -----------------------------------------------------------------------


def test_secret_key_is_generated_once_under_data_dir_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Settings().resolved_secret_key()
    assert len(first) >= 32
    key_file = data_dir / "secret_key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Another process (a fresh Settings) reuses it: tokens signed by the API verify in the worker.
    assert Settings().resolved_secret_key() == first
    # Another installation gets its own.
    assert Settings(data_dir=tmp_path / "elsewhere").resolved_secret_key() != first


def test_explicit_secret_key_is_used_and_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    assert Settings().resolved_secret_key() == GOOD_SECRET
    assert not (tmp_path / "data" / "secret_key").exists()
