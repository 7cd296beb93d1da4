"""The audit log's entries: every mutating action, who made it with which key, on what, and
how it ended."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    create_time: int
    user: str
    access_key_id: str
    action: str
    project_id: int | None
    targets: str  # JSON list
    parameters: str  # JSON object, secrets removed
    result: str  # OK or the error Code
    request_id: str
    source: str
