"""deploy/: Prometheus alerts and config, the Grafana dashboard (issue 10 item 4).

`promtool` (Debian package `prometheus`, installed by .ci/run) checks the rules and runs
their unit tests. Without it the tests skip locally, saying so, and fail in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import app.api.ops.metrics
import worker.metrics

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "chesscom-helper.json"
assert app.api.ops.metrics and worker.metrics  # both registries' metrics are loaded


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail("promtool is missing in CI: .ci/run installs the Debian package prometheus")
    pytest.skip("promtool not installed (apt-get install prometheus); CI runs this check")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_alert_rules() -> None:
    result = run(promtool(), "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_fire_when_they_should() -> None:
    result = run(promtool(), "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    result = run(promtool(), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_s_alerts_exist() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "OutboxBacklogAge",
        "NoSuccessfulPoll",
        "ChessComRateLimited",
        "DeliveryFailures",
        "WorkerDown",
    } <= names


def known_metrics() -> set[str]:
    names = {"up"}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


METRIC_NAME = re.compile(r"\b(chesscom_helper_[a-z0-9_]+)")


def expressions() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return exprs


def test_alerts_and_dashboard_use_only_metrics_the_processes_export() -> None:
    known = known_metrics()
    used = {m for e in expressions() for m in METRIC_NAME.findall(e)}
    assert used, "no metric found in the expressions"
    assert not used - known, f"unknown metrics: {sorted(used - known)}"


def test_the_dashboard_shows_the_main_figures() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    text = " ".join(expressions())
    for figure in (
        "chesscom_helper_outbox_pending",
        "chesscom_helper_outbox_oldest_due_age_seconds",
        "chesscom_helper_detection_to_delivery_seconds_bucket",
        "chesscom_helper_polls_total",
        "chesscom_helper_chesscom_rate_limited_total",
        "chesscom_helper_listen_connected",
    ):
        assert figure in text, figure
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
