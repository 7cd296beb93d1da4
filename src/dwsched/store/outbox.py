"""The alert outbox (`Tx.outbox`, docs/alerts.md "Nothing lost, nothing doubled").

An alert is recorded once, in the transaction that consumed its cause, under its
`dedupe_key` (a second process, or a second look at the same condition, records nothing);
each receiver it reaches is a delivery row. A delivery is sent by whichever process leases
it: the lease is taken in a transaction of its own (PostgreSQL: FOR UPDATE SKIP LOCKED; two
processes never hold one delivery), the notice is sent outside any transaction, and the
outcome is written with the attempt, by the lease holder only. A process that dies while
sending loses its lease when it runs out; the delivery is then tried again (at least once
in that window: the receiver may see it twice, never zero times).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dwsched.domain.alerting import Leased
from dwsched.store.dialect import insert_ignoring_conflicts, skipping_locked
from dwsched.store.schema import (
    alert_deliveries as ad,
    alert_delivery_attempts as attempts,
    alert_events as ae,
)
from dwsched.store.secrets import SecretBox, UnreadableSecret, reveal

PENDING, SENT, FAILED = "pending", "sent", "failed"
# An event's states beside those: nothing was sent, and why.
SILENCED, OVER_MAXIMUM, UNREACHABLE = "silenced", "over_maximum", "unreachable"
COUNTED = (PENDING, SENT, FAILED)  # the alerts a rule's daily Maximum counts


@dataclass(frozen=True, slots=True)
class NewDelivery:
    channel: str
    receiver: str  # as shown (masked)
    address: str  # an e-mail address or a URL: sealed when stored


@dataclass(frozen=True, slots=True)
class NewAlert:
    dedupe_key: str
    rule_id: int | None
    trigger: str
    project_id: int
    task_instance_id: int | None
    workflow_instance_id: int | None
    notice: str  # JSON
    state: str  # PENDING, or why nothing is sent (SILENCED, OVER_MAXIMUM, UNREACHABLE)
    deliveries: tuple[NewDelivery, ...]


class Outbox:
    """Alert events and their deliveries on one transaction."""

    def __init__(self, conn: sa.Connection, secrets: SecretBox | None) -> None:
        self.conn = conn
        self.secrets = secrets

    def record(self, alert: NewAlert, now_ms: int) -> int | None:
        """Record the alert and its deliveries; its id, or None when an alert with its key
        exists already (nothing written)."""
        found = self.conn.execute(
            insert_ignoring_conflicts(self.conn, ae)
            .values(
                rule_id=alert.rule_id,
                dedupe_key=alert.dedupe_key,
                trigger=alert.trigger,
                project_id=alert.project_id,
                task_instance_id=alert.task_instance_id,
                workflow_instance_id=alert.workflow_instance_id,
                notice=alert.notice,
                state=alert.state,
                created_at=now_ms,
            )
            .returning(ae.c.id)
        ).scalar()
        if found is None:  # its key was recorded already
            return None
        event_id = int(found)
        if alert.state == PENDING and alert.deliveries:
            self.conn.execute(
                sa.insert(ad),
                [
                    {
                        "event_id": event_id,
                        "channel": d.channel,
                        "receiver": d.receiver[:255],
                        "address": self._seal(d.address),
                        "state": PENDING,
                        "attempts": 0,
                        "next_try_at": now_ms,
                        "lease_owner": None,
                        "lease_until": None,
                        "detail": "",
                        "sent_at": None,
                    }
                    for d in alert.deliveries
                ],
            )
        return event_id

    def exists(self, dedupe_key: str) -> bool:
        return (
            self.conn.execute(sa.select(ae.c.id).where(ae.c.dedupe_key == dedupe_key)).first()
            is not None
        )

    def counted_since(self, rule_id: int, since_ms: int) -> int:
        """The rule's alerts since then that count toward its daily Maximum."""
        return int(
            self.conn.execute(
                sa.select(sa.func.count()).where(
                    ae.c.rule_id == rule_id, ae.c.created_at >= since_ms, ae.c.state.in_(COUNTED)
                )
            ).scalar_one()
        )

    def any_due(self, now_ms: int) -> bool:
        """Whether a delivery is due now and free (read first, so that an idle delivery
        loop takes no write lock)."""
        query = sa.select(ad.c.id).where(*_due(now_ms)).limit(1)
        return self.conn.execute(query).first() is not None

    def lease(self, owner: str, now_ms: int, limit: int, lease_ms: int) -> list[Leased]:
        """Up to `limit` deliveries due now and not leased by a live holder, leased to
        `owner` until now + lease_ms (this transaction's commit makes it theirs)."""
        query = (
            sa.select(ad.c.id).where(*_due(now_ms)).order_by(ad.c.next_try_at, ad.c.id).limit(limit)
        )
        ids = [int(i) for i in self.conn.execute(skipping_locked(self.conn, query)).scalars()]
        if not ids:
            return []
        self.conn.execute(
            sa.update(ad)
            .where(ad.c.id.in_(ids))
            .values(
                lease_owner=owner,
                lease_until=now_ms + lease_ms,
                attempts=ad.c.attempts + 1,
            )
        )
        rows = self.conn.execute(
            sa.select(ad, ae.c.notice)
            .join(ae, ae.c.id == ad.c.event_id)
            .where(ad.c.id.in_(ids))
            .order_by(ad.c.id)
        )
        leased: list[Leased] = []
        for r in rows:
            try:
                address = reveal(self.secrets, "alert-delivery", r.address)
            except UnreadableSecret:  # sealed with a server key this process does not have
                self.conn.execute(
                    sa.update(ad)
                    .where(ad.c.id == r.id)
                    .values(
                        state=FAILED,
                        lease_owner=None,
                        lease_until=None,
                        detail="its address is sealed with another server key",
                    )
                )
                self._settle(int(r.event_id))
                continue
            leased.append(
                Leased(
                    int(r.id),
                    int(r.event_id),
                    r.channel,
                    r.receiver,
                    address,
                    int(r.attempts),
                    r.notice,
                )
            )
        return leased

    def finish(
        self,
        leased: Leased,
        owner: str,
        outcome: str,
        detail: str,
        started_ms: int,
        now_ms: int,
        retry_at: int | None,
    ) -> bool:
        """Record a try of a leased delivery: sent, or failed (tried again at `retry_at`,
        or given up when None). False, with nothing written, when the lease is no longer
        `owner`'s (it ran out and another process took the delivery)."""
        if outcome == SENT:
            values: dict[str, Any] = {"state": SENT, "sent_at": now_ms}
        elif retry_at is not None:
            values = {"state": PENDING, "next_try_at": retry_at}
        else:
            values = {"state": FAILED}
        done = self.conn.execute(
            sa.update(ad)
            .where(
                ad.c.id == leased.id,
                ad.c.lease_owner == owner,
                ad.c.attempts == leased.attempt,
                ad.c.state == PENDING,
            )
            .values(lease_owner=None, lease_until=None, detail=detail[:2000], **values)
        )
        if done.rowcount != 1:
            return False
        self.conn.execute(
            sa.insert(attempts).values(
                delivery_id=leased.id,
                attempt=leased.attempt,
                worker=owner[:255],
                started_at=started_ms,
                duration_ms=max(0, now_ms - started_ms),
                outcome=outcome,
                detail=detail[:2000],
            )
        )
        self._settle(leased.event_id)
        return True

    def _settle(self, event_id: int) -> None:
        """The event's state from its deliveries': sent when all are, failed when one gave
        up and none is pending."""
        states = set(
            self.conn.execute(sa.select(ad.c.state).where(ad.c.event_id == event_id)).scalars()
        )
        if PENDING in states:
            return
        state = FAILED if FAILED in states else SENT
        self.conn.execute(sa.update(ae).where(ae.c.id == event_id).values(state=state))

    def history(
        self, project_ids: Sequence[int] | None, limit: int, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The newest alerts (of these workspaces; None: all) with their deliveries and
        each try, newest first: `limit` of them, before `before_id` when given."""
        query = sa.select(ae).order_by(ae.c.id.desc()).limit(limit)
        if project_ids is not None:
            query = query.where(ae.c.project_id.in_(list(project_ids)))
        if before_id is not None:
            query = query.where(ae.c.id < before_id)
        events = [dict(r._mapping) for r in self.conn.execute(query)]
        ids = [e["id"] for e in events]
        deliveries: dict[int, list[dict[str, Any]]] = {}
        tries: dict[int, list[dict[str, Any]]] = {}
        if ids:
            for r in self.conn.execute(
                sa.select(ad).where(ad.c.event_id.in_(ids)).order_by(ad.c.id)
            ):
                row = dict(r._mapping)
                row.pop("address")  # sealed: never shown
                deliveries.setdefault(int(r.event_id), []).append(row)
            delivery_ids = [d["id"] for ds in deliveries.values() for d in ds]
            if delivery_ids:
                for r in self.conn.execute(
                    sa.select(attempts)
                    .where(attempts.c.delivery_id.in_(delivery_ids))
                    .order_by(attempts.c.delivery_id, attempts.c.attempt)
                ):
                    tries.setdefault(int(r.delivery_id), []).append(dict(r._mapping))
        for e in events:
            e["deliveries"] = deliveries.get(int(e["id"]), [])
            for d in e["deliveries"]:
                d["attempts_made"] = tries.get(int(d["id"]), [])
        return events

    def _seal(self, address: str) -> str:
        if self.secrets is None:
            return address
        return self.secrets.seal("alert-delivery", address)


def _due(now_ms: int) -> tuple[sa.ColumnElement[bool], ...]:
    """A delivery due now and not leased by a live holder."""
    return (
        ad.c.state == PENDING,
        ad.c.next_try_at <= now_ms,
        sa.or_(ad.c.lease_until.is_(None), ad.c.lease_until < now_ms),
    )
