"""Push tests talk to loopback only (the webhook tests' safety net), with the worker's
fixtures (real PostgreSQL, the Chess.com simulator, a worker factory)."""

from tests.webhooks.conftest import loopback_only  # noqa: F401  (autouse)
from tests.worker.conftest import (  # noqa: F401
    make_worker,
    sim_root,
    smtp_server,
    worker_settings,
    world,
)
