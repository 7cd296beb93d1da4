"""`dwsched serve`: the API on uvicorn over one store."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import uvicorn
from starlette.applications import Starlette

from dwsched.api.app import create_app
from dwsched.clock import SystemClock
from dwsched.domain.calendar import zone
from dwsched.store import Store


def build_app(store: Store, default_timezone: str) -> Starlette:
    zone(default_timezone, "--default-timezone")
    return create_app(store, SystemClock(), default_timezone)


# How `serve` hands its settings to worker processes (which import `worker_app`).
_WORKER_ENV = "_DWSCHED_WORKER"


def serve(
    store: Store,
    host: str,
    port: int,
    default_timezone: str,
    log_level: str = "info",
    workers: int = 1,
) -> None:
    """Serve until interrupted; the store is closed on the way out.

    With `workers` > 1, that many processes accept on the same socket, each with its own
    connections to the database (migrated once, here, before they start). Nonces live in
    the database, so a request is accepted once whichever process receives it.
    """
    _configure_logging(log_level)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "loop": "auto",
        "http": "auto",
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        build_app(store, default_timezone)  # validates the settings before any fork
        url = store.engine.url.render_as_string(hide_password=False)
        store.close()
        os.environ[_WORKER_ENV] = json.dumps([url, default_timezone, log_level])
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)
        return
    app = build_app(store, default_timezone)
    try:
        uvicorn.run(app, **options)
    finally:
        store.close()


def worker_app() -> Starlette:
    """The app of one worker process of `serve --workers N`."""
    url, default_timezone, log_level = json.loads(os.environ[_WORKER_ENV])
    _configure_logging(log_level)
    return build_app(Store.open(url, migrate=False), default_timezone)


def _configure_logging(log_level: str) -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
