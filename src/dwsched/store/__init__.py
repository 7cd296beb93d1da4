"""Storage: one interface (`Store`) over SQLite or PostgreSQL, SQLAlchemy Core only."""

from __future__ import annotations

from dwsched.store.bulk import ImportBatch
from dwsched.store.store import Store

__all__ = ["ImportBatch", "Store"]
