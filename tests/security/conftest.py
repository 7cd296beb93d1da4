"""This directory's tests get a database on both dialects and a live server (tests/support)."""

from __future__ import annotations

from tests.support.databases import db_url, store
from tests.support.server import live

__all__ = ["db_url", "live", "store"]
