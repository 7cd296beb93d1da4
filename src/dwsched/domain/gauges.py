"""What a metrics scrape reads from the database: the state of the latest BizDates and of
the resource groups (dwsched.metrics turns it into gauges). Pure values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from dwsched.domain.workers import slot_limit

# BizDates a scrape counts instances of, around today's UTC date: yesterday's BizDate is
# today's run in every zone; the day before and the day after cover zones up to a day away
# and the runs of a late or an early BizDate.
DAYS_BEFORE = 2
DAYS_AFTER = 1


def gauge_days(now_ms: int) -> tuple[date, date]:
    """The first and the last BizDate whose instances a scrape counts."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    return today - timedelta(days=DAYS_BEFORE), today + timedelta(days=DAYS_AFTER)


@dataclass(frozen=True)
class StateGauges:
    """`instances`: (BizDate, status) -> workflow instances over every workspace;
    `waiting` / `running`: resource group -> task instances in WaitResource / attempts in
    progress; `slots`: the resource groups' rows (`*`: every other group)."""

    instances: Mapping[tuple[date, str], int] = field(default_factory=dict)
    waiting: Mapping[str, int] = field(default_factory=dict)
    running: Mapping[str, int] = field(default_factory=dict)
    slots: Mapping[str, int] = field(default_factory=dict)

    def slot_limit(self, group: str) -> int:
        return slot_limit(self.slots, group)
