"""Console sign-in counters, shared by every API process on the database.

A counter (`kind`, user name, address) holds the failed sign-ins counted against it and the
time until which further tries are refused; a `trusted` row remembers that a user signed in
from an address. The rules (which counters a try counts against, how long each failure holds
them) are web.signin's; this module reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from dwsched.domain.sessions import Claim, Counter
from dwsched.store.dialect import insert_on_conflict
from dwsched.store.schema import signin_failures

TRUSTED = "trusted"
c = signin_failures.c


def _is(counter: Counter) -> sa.ColumnElement[bool]:
    return sa.and_(
        c.kind == counter.kind, c.user_name == counter.user_name, c.source == counter.source
    )


class SignIns:
    """Console sign-in counters (`Tx.signins`); the rules are web.signin's."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def claim(
        self,
        counters: Sequence[Counter],
        now_ms: int,
        hold_ms: Callable[[str, int], int],
        keep_ms: int,
    ) -> Claim:
        """Admit a try unless one of `counters` refuses tries now (then `wait_ms`, nothing
        written). An admitted try is counted as failed at once, in the caller's write
        transaction with the check, so that concurrent tries on any process are counted
        before their passwords are checked; `hold_ms(kind, failures)` is how long a counter
        then refuses tries, and it lapses `keep_ms` after its last try. `settle` takes the
        count back."""
        ordered = tuple(sorted(set(counters)))
        found = self._counts(ordered, now_ms)
        until = max((held for _, held in found.values()), default=0)
        if until > now_ms:
            return Claim(ordered, now_ms, {}, wait_ms=until - now_ms)
        blocked: dict[Counter, int] = {}
        for counter in ordered:
            failures = found.get(counter, (0, 0))[0] + 1
            blocked[counter] = now_ms + hold_ms(counter.kind, failures)
            self._count_failure(counter, failures, blocked[counter], now_ms, now_ms + keep_ms)
        return Claim(ordered, now_ms, blocked)

    def settle(
        self, claim: Claim, forget: Sequence[str] = (), trust: tuple[str, str, int] | None = None
    ) -> None:
        """Take back the failure `claim` counted: counters of the kinds in `forget` are
        deleted, the others lose one failure and open again (unless a later try holds
        them); `trust` (user name, address, until) remembers a successful sign-in."""
        for counter in claim.counters:
            if counter.kind in forget:
                self._forget(counter)
            else:
                self._refund(counter, claim.blocked[counter], claim.at_ms)
                self._forget_if_clear(counter, claim.at_ms)
        if trust is not None:
            self._trust(*trust)

    def _counts(self, counters: Sequence[Counter], now_ms: int) -> dict[Counter, tuple[int, int]]:
        """The live counters among `counters`: (failures, blocked_until), their rows locked until
        the transaction ends on PostgreSQL (SQLite's write transaction holds the lock already)."""
        if not counters:
            return {}
        rows = self.conn.execute(
            sa.select(c.kind, c.user_name, c.source, c.failures, c.blocked_until)
            .where(sa.or_(*(_is(k) for k in counters)), c.expires_at >= now_ms)
            .order_by(c.kind, c.user_name, c.source)
            .with_for_update()
        )
        return {
            Counter(r.kind, r.user_name, r.source): (int(r.failures), int(r.blocked_until))
            for r in rows
        }

    def _count_failure(
        self,
        counter: Counter,
        failures: int,
        blocked_until: int,
        now_ms: int,
        expires_at: int,
    ) -> None:
        """Count one failure: the row gets `failures` (one more than it had, as the caller read
        it) and refuses tries until `blocked_until`; a row that lapsed starts again."""
        statement = insert_on_conflict(self.conn.dialect, signin_failures).values(
            kind=counter.kind,
            user_name=counter.user_name,
            source=counter.source,
            failures=failures,
            blocked_until=blocked_until,
            expires_at=expires_at,
        )
        new = statement.excluded
        lapsed = c.expires_at < now_ms
        self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=[c.kind, c.user_name, c.source],
                set_={
                    # A row another process inserted meanwhile (both read none) still counts.
                    "failures": sa.case(
                        (lapsed, new.failures),
                        (c.failures >= new.failures, c.failures + 1),
                        else_=new.failures,
                    ),
                    "blocked_until": sa.case(
                        (sa.and_(~lapsed, c.blocked_until > new.blocked_until), c.blocked_until),
                        else_=new.blocked_until,
                    ),
                    "expires_at": new.expires_at,
                },
            )
        )

    def _refund(self, counter: Counter, claimed_until: int, reopen_at: int) -> None:
        """Take back a failure counted in advance (the try succeeded, or never ran); the counter
        opens again at `reopen_at` unless a later try has set its own refusal time since."""
        self.conn.execute(
            sa.update(signin_failures)
            .where(_is(counter))
            .values(
                failures=sa.case((c.failures > 0, c.failures - 1), else_=0),
                blocked_until=sa.case(
                    (c.blocked_until == claimed_until, reopen_at), else_=c.blocked_until
                ),
            )
        )

    def _forget(self, counter: Counter) -> None:
        self.conn.execute(sa.delete(signin_failures).where(_is(counter)))

    def _forget_if_clear(self, counter: Counter, now_ms: int) -> None:
        """Delete the counter if it counts no failure and holds nothing (a refund emptied it)."""
        self.conn.execute(
            sa.delete(signin_failures).where(
                _is(counter), c.failures == 0, c.blocked_until <= now_ms
            )
        )

    def trusted(self, user_name: str, source: str, now_ms: int) -> bool:
        """Whether the user signed in from this address lately (the row has not lapsed)."""
        found = self.conn.execute(
            sa.select(c.kind).where(
                _is(Counter(TRUSTED, user_name, source)), c.expires_at >= now_ms
            )
        ).first()
        return found is not None

    def _trust(self, user_name: str, source: str, until_ms: int) -> None:
        statement = insert_on_conflict(self.conn.dialect, signin_failures).values(
            kind=TRUSTED,
            user_name=user_name,
            source=source,
            failures=0,
            blocked_until=0,
            expires_at=until_ms,
        )
        self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=[c.kind, c.user_name, c.source],
                set_={"expires_at": statement.excluded.expires_at},
            )
        )

    def sweep(self, now_ms: int) -> int:
        """Delete the rows that lapsed; how many."""
        done = self.conn.execute(sa.delete(signin_failures).where(c.expires_at < now_ms))
        return int(done.rowcount or 0)
