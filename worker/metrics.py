"""Prometheus metrics of the worker (served when WORKER_METRICS_PORT is set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

POLLS = Counter("chesscom_helper_polls_total", "Player polls by outcome", ["outcome"])
CHESSCOM_304 = Counter("chesscom_helper_chesscom_not_modified_total", "304 answers from Chess.com")
CHESSCOM_429 = Counter("chesscom_helper_chesscom_rate_limited_total", "429 answers from Chess.com")
EMAILS = Counter("chesscom_helper_emails_total", "Outbox deliveries by result", ["type", "result"])
CONCURRENCY_LIMIT = Gauge("chesscom_helper_poll_concurrency_limit", "Current adaptive limit")
