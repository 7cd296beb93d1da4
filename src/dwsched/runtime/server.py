"""`dwsched serve`: the API on uvicorn over one store."""

from __future__ import annotations

import logging

import uvicorn
from starlette.applications import Starlette

from dwsched.api.app import create_app
from dwsched.clock import SystemClock
from dwsched.domain.calendar import zone
from dwsched.store import Store


def build_app(store: Store, default_timezone: str) -> Starlette:
    zone(default_timezone, "--default-timezone")
    return create_app(store, SystemClock(), default_timezone)


def serve(
    store: Store, host: str, port: int, default_timezone: str, log_level: str = "info"
) -> None:
    """Serve until interrupted; the store is closed on the way out."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = build_app(store, default_timezone)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            loop="auto",
            http="auto",
            timeout_graceful_shutdown=10,
        )
    finally:
        store.close()
