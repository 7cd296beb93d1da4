"""This directory's tests get a database on both dialects (tests/support) and read
`/metrics` over HTTP with the Prometheus parser."""

from __future__ import annotations

from tests.support.databases import db_url, store

__all__ = ["db_url", "store"]
