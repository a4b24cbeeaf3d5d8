"""A process imports only what it runs: the worker and the domain services never load the
web framework (issue 8, issue 18 item 4)."""

from __future__ import annotations

import json
import subprocess
import sys

from app.config import PROJECT_ROOT

_PROBE = """
import json, sys
import worker.__main__
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"fastapi", "starlette"})))
"""


def _web_modules_after_importing(code: str) -> list[str]:
    # A fresh interpreter: this test process has imported FastAPI long ago.
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_worker_leaves_fastapi_and_starlette_unloaded() -> None:
    assert _web_modules_after_importing(_PROBE) == []


def test_importing_the_domain_leaves_fastapi_and_starlette_unloaded() -> None:
    # The services the API's routes call hold the rules; the web framework stays in app.api.
    domain = "\n".join(
        f"import {module}"
        for module in (
            "app.subscriptions.service",
            "app.subscriptions.me",
            "app.subscriptions.recipients",
            "app.subscriptions.webhook_manage",
            "app.subscriptions.digest",
            "app.players.service",
            "app.notifications.outbox",
            "app.notifications.service",
            "app.schemas",
            "app.cli",
        )
    )
    assert _web_modules_after_importing(_PROBE.replace("import worker.__main__", domain)) == []


def test_the_probe_would_see_the_web_framework() -> None:
    # The same probe on the API's module does see them: the check above can fail.
    probe = _PROBE.replace("import worker.__main__", "import app.main")
    assert "fastapi" in _web_modules_after_importing(probe)
