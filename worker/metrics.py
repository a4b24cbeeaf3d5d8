"""Prometheus metrics of the worker (served with /healthz when WORKER_METRICS_PORT is set).

deploy/prometheus/alerts.yml and deploy/grafana/ use these names: rename with care.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

POLLS = Counter("chesscom_helper_polls_total", "Player polls by outcome", ["outcome"])
LAST_SUCCESSFUL_POLL = Gauge(
    "chesscom_helper_last_successful_poll_timestamp_seconds",
    "Unix time of the last poll that got an answer from Chess.com",
)
CHESSCOM_304 = Counter("chesscom_helper_chesscom_not_modified_total", "304 answers from Chess.com")
CHESSCOM_429 = Counter("chesscom_helper_chesscom_rate_limited_total", "429 answers from Chess.com")
CHESSCOM_UNAVAILABLE = Counter(
    "chesscom_helper_chesscom_unavailable_total",
    "Chess.com requests that failed with 5xx or a timeout (each is retried with backoff)",
)
EMAILS = Counter("chesscom_helper_emails_total", "Outbox deliveries by result", ["type", "result"])
CONCURRENCY_LIMIT = Gauge("chesscom_helper_poll_concurrency_limit", "Current adaptive limit")

DELIVERY_LATENCY = Histogram(
    "chesscom_helper_detection_to_delivery_seconds",
    "From the end of a session's first game to the SMTP server accepting the email",
    buckets=(5, 15, 30, 60, 120, 180, 300, 450, 600, 900, 1800, 3600, 7200),
)
OUTBOX_DEPTH = Gauge("chesscom_helper_outbox_pending", "Pending outbox rows (due or not)")
OUTBOX_DUE = Gauge("chesscom_helper_outbox_due", "Pending outbox rows due now")
OUTBOX_OLDEST_DUE_AGE = Gauge(
    "chesscom_helper_outbox_oldest_due_age_seconds",
    "How long the oldest due outbox row has been due (0 when none)",
)

LISTEN_CONNECTED = Gauge(
    "chesscom_helper_listen_connected", "1 while the outbox LISTEN connection is up"
)
LISTEN_RECONNECTS = Counter(
    "chesscom_helper_listen_reconnects_total", "LISTEN connections re-established after a loss"
)
LOOP_LAST_TICK = Gauge(
    "chesscom_helper_worker_loop_last_tick_timestamp_seconds",
    "Unix time a worker loop last completed a round",
    ["loop"],
)
LOOP_ERRORS = Counter(
    "chesscom_helper_worker_loop_errors_total", "Failed rounds of a worker loop", ["loop"]
)
DATABASE_UP = Gauge(
    "chesscom_helper_worker_database_up", "1 when the worker's last database check answered"
)
PRUNED = Counter("chesscom_helper_pruned_rows_total", "Rows deleted by retention", ["table"])


def visible_since(notification_type: str, payload: Mapping[str, Any]) -> float | None:
    """When the news of a live-match email became visible: the end of its earliest game
    (None for other emails). Delivery computes it once per event, not per email."""
    if notification_type != "live_match":
        return None
    ends = [t for g in payload.get("games") or () if (t := _end_time(g)) is not None]
    return min(ends) if ends else None


def _end_time(game: Any) -> float | None:
    value = game.get("end_time") if isinstance(game, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None
