"""Storage: one interface (`Store`) over SQLite or PostgreSQL, SQLAlchemy Core only.

Code above the store imports only this package: the Store, its unit of work (`Tx`) and the
few types that hold I/O or belong to the store's own protocol (a request's key session,
import batches, the server key). Value types live in `dwsched.domain`.
"""

from __future__ import annotations

from dwsched.store.bulk import VALUES, EncodedBatch, ImportBatch, RowBuilder
from dwsched.store.connect import passwordless_postgresql, sqlite_file
from dwsched.store.keys import KeySession
from dwsched.store.migrate import head_revision
from dwsched.store.secrets import SecretBox, ServerKeyError, generate_server_key
from dwsched.store.store import Store
from dwsched.store.unit import Tx

__all__ = [
    "VALUES",
    "EncodedBatch",
    "ImportBatch",
    "KeySession",
    "RowBuilder",
    "SecretBox",
    "ServerKeyError",
    "Store",
    "Tx",
    "generate_server_key",
    "head_revision",
    "passwordless_postgresql",
    "sqlite_file",
]
