"""Resource groups' rows: the slots of each group, shared by every worker on the database
(domain.workers). Claims read them inside their transaction (Store.claim_tasks)."""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.domain.workers import ResourceGroup
from dwsched.store.dialect import insert_ignoring_conflicts
from dwsched.store.schema import resource_groups as rg


def slot_limits(conn: sa.Connection) -> dict[str, int]:
    """{group: slots} of the groups with a row (`*`: every other group)."""
    return {str(n): int(s) for n, s in conn.execute(sa.select(rg.c.name, rg.c.slots))}


def all_groups(conn: sa.Connection) -> list[ResourceGroup]:
    rows = conn.execute(sa.select(rg).order_by(rg.c.name))
    return [
        ResourceGroup(r.name, int(r.slots), int(r.create_time), int(r.modify_time)) for r in rows
    ]


def set_slots(conn: sa.Connection, name: str, slots: int, now_ms: int) -> int | None:
    """Give `name` this many slots; the slots it had (None: it had no row)."""
    before = conn.execute(sa.select(rg.c.slots).where(rg.c.name == name)).scalar()
    insert = insert_ignoring_conflicts(conn, rg).values(
        name=name, slots=slots, create_time=now_ms, modify_time=now_ms
    )
    conn.execute(insert)
    conn.execute(sa.update(rg).where(rg.c.name == name).values(slots=slots, modify_time=now_ms))
    return None if before is None else int(before)


def delete(conn: sa.Connection, name: str) -> bool:
    """Remove the group's row (it takes the default again); False when it had none."""
    return conn.execute(sa.delete(rg).where(rg.c.name == name)).rowcount > 0


class ResourceGroups:
    """The resource groups' slots, shared by every worker (`Tx.resource_groups`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def all(self) -> list[ResourceGroup]:
        return all_groups(self.conn)

    def set_slots(self, name: str, slots: int, now_ms: int) -> int | None:
        """Give the group `name` (`*`: every group without a row) this many slots over
        every worker; the slots it had (None: the default)."""
        return set_slots(self.conn, name, slots, now_ms)

    def delete(self, name: str) -> bool:
        """The group takes the default slots again; False when it had no row."""
        return delete(self.conn, name)
