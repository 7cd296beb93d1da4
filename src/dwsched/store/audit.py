"""The audit log: every mutating action, who made it with which key, on what, and how it
ended."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from dwsched.domain.audit import AuditEntry
from dwsched.store.schema import audit_log


class AuditLog:
    """The audit log (`Tx.audit`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def record(self, entry: AuditEntry) -> None:
        self.conn.execute(
            sa.insert(audit_log).values(
                create_time=entry.create_time,
                user_name=entry.user,
                access_key_id=entry.access_key_id,
                action=entry.action,
                project_id=entry.project_id,
                targets=entry.targets,
                parameters=entry.parameters,
                result=entry.result,
                request_id=entry.request_id,
                source=entry.source,
            )
        )

    def entries(
        self,
        since_ms: int | None = None,
        user: str | None = None,
        actions: Sequence[str] | None = None,
        project_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest entries first."""
        c = audit_log.c
        where: list[sa.ColumnElement[bool]] = []
        if since_ms is not None:
            where.append(c.create_time >= since_ms)
        if user is not None:
            where.append(c.user_name == user)
        if actions:
            where.append(c.action.in_(list(actions)))
        if project_id is not None:
            where.append(c.project_id == project_id)
        rows = self.conn.execute(
            sa.select(audit_log)
            .where(*where)
            .order_by(c.create_time.desc(), c.id.desc())
            .limit(limit)
        )
        return [
            AuditEntry(
                int(r.id),
                int(r.create_time),
                r.user_name,
                r.access_key_id,
                r.action,
                r.project_id,
                r.targets,
                r.parameters,
                r.result,
                r.request_id,
                r.source,
            )
            for r in rows
        ]
