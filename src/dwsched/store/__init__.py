"""Storage: one interface (`Store`) over SQLite or PostgreSQL, SQLAlchemy Core only."""

from __future__ import annotations

from dwsched.store.bulk import EncodedBatch, ImportBatch, RowBuilder
from dwsched.store.store import Store

__all__ = ["EncodedBatch", "ImportBatch", "RowBuilder", "Store"]
